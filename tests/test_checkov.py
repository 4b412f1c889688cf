"""checkov over every synthesized stack: no failed check without a justified skip, no stale skip."""

from __future__ import annotations

from tests.checkov_gate import Finding, Skip, evaluate, load_skips, run_checkov


def test_gate_logic_flags_unjustified_and_stale():
    findings = [
        Finding("CKV_AWS_1", "dev-storage", "aws_s3_bucket.models_bucket_1", "x"),
        Finding("CKV_AWS_2", "dev-storage", "aws_s3_bucket.inputs_bucket_2", "y"),
    ]
    skips = [
        Skip("CKV_AWS_1", "reason", ["*-storage/aws_s3_bucket.models_*"]),
        Skip("CKV_AWS_2", "reason", ["*-network/*"]),
        Skip("CKV_AWS_3", "reason", ["*"]),
    ]
    unjustified, stale = evaluate(findings, skips)
    assert unjustified == [findings[1]]
    assert [skip.check_id for skip in stale] == ["CKV_AWS_2", "CKV_AWS_3"]


def test_every_skip_has_a_reason():
    skips = load_skips()
    assert skips
    assert all(len(skip.reason) > 40 for skip in skips)


def test_checkov_gate_is_green(synth):
    findings = run_checkov(synth.outdir / "stacks")
    assert findings, "checkov reported nothing at all: is it scanning the stacks?"
    unjustified, stale = evaluate(findings, load_skips())
    assert not unjustified, "\n".join(f"{f.check_id} {f.target}: {f.name}" for f in unjustified)
    assert not stale, [skip.check_id for skip in stale]
