"""The instructor side: an nbgrader course built from labs/, and autograding that does not trust submissions.

Modules (each imports only those listed before it, and the engine; see docs/instructors.md for the workflow):
gradebook (course id, the gradebook, grades CSV) · mermaid (diagrams rendered for feedback) · build (course
directory and instructor notebooks) · release (no solution in a release) · feedback (nbconvert preprocessors) ·
runtime (what test cells call inside the student's kernel) · verify (the trusted grading run) · grants (scoped
credentials) · sandbox (the kernel's boundary) · harness (safe autograding) · answers (written answers) ·
cli (`k8slab course` and `python -m graders.course`).
"""
