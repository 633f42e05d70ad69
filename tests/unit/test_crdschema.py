"""graders.crdschema: a CRD's structural schema as a strict validator, and the few CEL rules checked offline."""
from __future__ import annotations

from graders import crdschema

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.io"},
    "spec": {"group": "example.io", "names": {"kind": "Widget"}, "versions": [
        {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "mode": {"type": "string", "enum": ["A", "B"]},
                "timeout": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "duration(self) >= duration('1ms')", "message": "duration"}]},
                "refs": {"type": "array", "items": {"type": "object", "properties": {
                    "group": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
                    "port": {"type": "integer"}}, "x-kubernetes-validations": [
                    {"rule": "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true"},
                    {"rule": "self.name.startsWith('x')"}]}}}}}}}},
        {"name": "v0", "served": False, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}


def widget(**spec):
    return {"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def schema():
    return crdschema.Catalog([CRD]).get("example.io/v1", "Widget")


def test_only_served_versions_are_offered():
    assert crdschema.Catalog([CRD]).kinds() == {("example.io/v1", "Widget")}


def test_a_valid_object_passes_and_the_rules_are_counted():
    report = schema().validate(widget(size="50%", note=None, free={"anything": [1]}, mode="A", timeout="500ms",
                                      refs=[{"group": "", "kind": "Service", "name": "x", "port": 80}]))
    assert report.problems == () and report.checked_rules == 2 and report.unchecked_rules == 1


def test_unknown_fields_wrong_enums_and_types_are_named_by_path():
    report = schema().validate(widget(sise=3, mode="C", size=[1]))
    found = {(p.where, p.message.split(" ")[0]) for p in report.problems}
    assert ("spec", "Additional") in found and ("spec.mode", "'C'") in found and ("spec.size", "[1]") in found


def test_known_cel_rules_are_evaluated():
    report = schema().validate(widget(timeout="500", refs=[{"kind": "Service", "name": "x"}]))
    messages = {p.where: p.message for p in report.problems}
    assert "not a duration" in messages["spec.timeout"]
    assert "needs a port" in messages["spec.refs.0"]


def test_durations_as_go_reads_them():
    assert crdschema.duration_s("1m30s") == 90 and crdschema.duration_s("500ms") == 0.5
    assert crdschema.duration_s("0.5s") == 0.5 and crdschema.duration_s("5") is None


def test_the_identity_of_the_object_is_checked():
    report = schema().validate({**widget(), "apiVersion": "example.io/v2"})
    assert any(p.where == "apiVersion" for p in report.problems)
    assert any(p.where == "metadata" for p in schema().validate({**widget(), "metadata": {}}).problems)
