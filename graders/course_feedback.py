"""Kept on purpose for course directories built before graders.course existed.

Their nbgrader_config.py names ``graders.course_feedback.MermaidImages`` as a feedback preprocessor; a rebuild
writes graders.course.feedback instead. tests/unit/test_course_compat.py checks the old name still loads.
"""
from graders.course.feedback import MermaidImages

__all__ = ["MermaidImages"]
