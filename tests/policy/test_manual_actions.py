"""Manual practitioner actions, institution and department actions, unbinding."""

from __future__ import annotations

from app.policy import (
    DepartmentAction,
    Event,
    InstitutionAction,
    evaluate,
    evaluate_institution,
    evaluate_practitioner,
)

from .factories import CAL, blocking, d, manual, profile, reg, spans

JINING = profile("jining-2024")


def test_manual_suspension_is_an_interval_with_its_reason() -> None:
    out = evaluate_practitioner(JINING, "P1", [manual("suspend", "2025-03-01", "2025-06-01")], CAL)
    [iv] = out.intervals
    assert (iv.start, iv.end, iv.status) == (d("2025-03-01"), d("2025-06-01"), "suspended")
    assert iv.rule == "manual: 稽核"
    assert iv.institution is None
    assert iv.emergency_exempt  # 济宁 exempts emergencies for every practitioner sanction
    assert iv.message == "医保支付资格中止至2025-05-31（稽核）"


def test_each_manual_kind_maps_to_its_status() -> None:
    events = [
        manual("terminate", "2025-01-01", institution="H1"),
        manual("lock_code", "2025-02-01", institution="H2"),
        manual("cancel_code", "2025-03-01"),
    ]
    out = evaluate_practitioner(JINING, "P1", events, CAL)
    assert [(iv.status, iv.institution) for iv in out.intervals] == [
        ("terminated", "H1"),
        ("code_locked", "H2"),
        ("code_cancelled", None),
    ]


def test_restore_ends_open_intervals_in_its_scope_only() -> None:
    events = [
        manual("suspend", "2025-01-01", institution="H1"),
        manual("suspend", "2025-01-01", institution="H2"),
        manual("restore", "2025-02-01", institution="H1"),
    ]
    out = evaluate_practitioner(JINING, "P1", events, CAL)
    assert [(iv.institution, iv.end) for iv in out.intervals] == [
        ("H1", d("2025-02-01")),
        ("H2", None),
    ]
    everywhere = evaluate_practitioner(
        JINING, "P1", [*events, manual("restore", "2025-03-01")], CAL
    )
    assert [iv.end for iv in everywhere.intervals] == [d("2025-02-01"), d("2025-03-01")]


def test_as_of_ignores_later_events() -> None:
    events = [manual("suspend", "2025-01-01"), manual("restore", "2025-02-01")]
    out = evaluate_practitioner(JINING, "P1", events, CAL, as_of=d("2025-01-15"))
    assert blocking(out) == [("2025-01-01", None, "suspended")]


def test_other_practitioners_events_are_ignored() -> None:
    out = evaluate_practitioner(
        JINING, "P1", [manual("suspend", "2025-01-01", practitioner="P2")], CAL
    )
    assert out.intervals == ()


def test_institution_action_gives_an_institution_interval_and_a_follow_notice() -> None:
    events = [
        InstitutionAction("H1", "suspend", d("2025-04-01"), None, "协议考核"),
        InstitutionAction("H1", "restore", d("2025-07-01"), None, "整改完成"),
    ]
    inst, depts = evaluate_institution(JINING, "H1", events, {}, {}, CAL)
    assert spans(inst.intervals) == [("2025-04-01", "2025-07-01", "suspended")]
    assert inst.intervals[0].institution == "H1"
    assert [n.kind for n in inst.notices] == ["agreements_follow_institution"]
    assert depts == {}


def test_department_action_gives_a_department_outcome() -> None:
    events = [
        DepartmentAction("H1", "D3", "suspend", d("2025-04-01"), d("2025-05-01"), "科室违规"),
        DepartmentAction("H1", "D4", "suspend", d("2025-04-01"), None, "科室违规"),
        DepartmentAction("H1", "D4", "restore", d("2025-04-10"), None, "整改"),
    ]
    inst, depts = evaluate_institution(JINING, "H1", events, {}, {}, CAL)
    assert inst.intervals == ()
    assert sorted(depts) == ["D3", "D4"]
    assert spans(depts["D3"].intervals) == [("2025-04-01", "2025-05-01", "suspended")]
    assert spans(depts["D4"].intervals) == [("2025-04-01", "2025-04-10", "suspended")]


def test_evaluate_composes_everything() -> None:
    events: list[Event] = [
        reg("P1", "H1"),
        manual("suspend", "2025-01-01", "2025-02-01"),
        InstitutionAction("H2", "terminate", d("2025-01-01"), None, "欺诈骗保"),
    ]
    result = evaluate(JINING, events, {"P1": "doctor"}, CAL)
    assert set(result.practitioners) == {"P1"}
    assert set(result.institutions) == {"H1", "H2"}
    assert spans(result.institutions["H2"].intervals) == [("2025-01-01", None, "terminated")]
