"""NetworkPolicy semantics as data, after Cyclonus: pods, namespaces and policies in; verdicts that name the
policy, rule, peer and port they come from out.

selectors and pods -> compile (policies) -> inventory (all of it, read from documents) -> verdicts
(``PolicyEngine``) -> explain (a verdict in words) and mistakes (known mistakes in the learner's terms);
truthtable (from x to tables, expected vs observed, and the glyphs every matrix is drawn with); observe (a table
seen by probes, judged against the policies); cli (``k8slab matrix`` / ``k8slab explain``); fields reads
document fields as the API server does.
"""
