"""The plan summarizer (.github/scripts/plan_summary.py) on real `terraform show -json` documents.

tests/fixtures/plans/*.json were written by Terraform 1.11.4 from terraform_data resources:
create.json (empty state), noop.json (applied, unchanged), mixed.json (from that state: one create,
one update, one delete, a destroy-before-create replace and a create-before-destroy replace).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / ".github" / "scripts"))
import plan_summary  # noqa: E402
from plan_summary import MARKER, StackSummary, render_comment, render_environment, summarize  # noqa: E402

FIXTURES = PROJECT / "tests" / "fixtures" / "plans"


def plan(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_counts_match_terraforms_own_plan_line():
    # `terraform show mixed.tfplan` printed "Plan: 3 to add, 1 to change, 3 to destroy."
    summary = summarize(plan("mixed"))
    assert summary.counts() == "3 to add, 1 to change, 3 to destroy"
    assert summarize(plan("create")).counts() == "5 to add, 0 to change, 0 to destroy"


def test_replace_in_both_orders_and_delete_are_named():
    summary = summarize(plan("mixed"))
    assert summary.deleted == ["terraform_data.deleted"]
    assert sorted(summary.replaced) == [
        "terraform_data.replaced (destroy before create)",
        "terraform_data.replaced_cbd (create before destroy)",
    ]
    assert summary.destructive and summary.outputs_changed


def test_no_op_plan_has_no_changes():
    summary = summarize(plan("noop"))
    assert summary.counts() == "0 to add, 0 to change, 0 to destroy"
    assert not summary.has_changes and not summary.destructive and not summary.outputs_changed


def test_create_only_plan_is_not_destructive():
    summary = summarize(plan("create"))
    assert summary.has_changes and not summary.destructive


def test_data_reads_deposed_imports_and_forget():
    document = copy.deepcopy(plan("noop"))
    template = document["resource_changes"][0]
    extra = [
        {**template, "address": "data.aws_caller_identity.me", "mode": "data", "change": {"actions": ["read"]}},
        {**template, "address": "aws_s3_bucket.old", "deposed": "00aa", "change": {"actions": ["delete"]}},
        {**template, "address": "aws_s3_bucket.adopted", "change": {"actions": ["no-op"], "importing": {"id": "b"}}},
        {**template, "address": "aws_s3_bucket.dropped", "change": {"actions": ["forget"]}},
    ]
    document["resource_changes"] += extra
    summary = summarize(document)
    assert summary.counts() == "0 to add, 0 to change, 1 to destroy, 1 to import, 1 to forget"
    assert summary.deleted == ["aws_s3_bucket.old (deposed 00aa)"]


def test_rejects_a_document_that_is_not_a_plan():
    with pytest.raises(ValueError, match="not a terraform plan"):
        summarize({"format_version": "1.0", "values": {}})


def _result(environment: str, **stacks: StackSummary | str) -> dict:
    entries = []
    for stack_id, value in stacks.items():
        if isinstance(value, StackSummary):
            entries.append({"id": stack_id, "status": "planned", "summary": value.to_dict()})
        else:
            entries.append({"id": stack_id, "status": "failed", "detail": value})
    return {"environment": environment, "commit": "abc", "stacks": entries}


def test_environment_section_has_a_row_per_stack_and_a_warning_per_destroy_or_replace():
    text = render_environment(
        _result(
            "dev",
            **{"dev-network": summarize(plan("noop")), "dev-storage": summarize(plan("mixed")), "dev-edge": "boom"},
        )
    )
    assert "| dev-network | 0 | 0 | 0 | no changes |" in text
    assert "| dev-storage | 3 | 1 | 3 | ⚠️ destroys or replaces, outputs change |" in text
    assert "| dev-edge | – | – | – | boom |" in text
    warnings = [line for line in text.splitlines() if line.startswith("> **dev-storage**")]
    assert warnings == [
        "> **dev-storage** destroys `terraform_data.deleted`",
        "> **dev-storage** replaces `terraform_data.replaced (destroy before create)`",
        "> **dev-storage** replaces `terraform_data.replaced_cbd (create before destroy)`",
    ]
    assert text.count("> [!WARNING]") == 3


def test_warnings_are_capped_and_addresses_cannot_break_the_table():
    summary = StackSummary(destroy=30, deleted=[f'aws_x.y["a|b`{n}"]' for n in range(30)])
    lines = plan_summary.warning_lines("dev-x", summary)
    assert len(lines) == plan_summary.MAX_WARNINGS_PER_STACK + 1
    assert "10 more destroy/replace" in lines[-1]
    assert "a\\|b'0" in lines[0] and "`0" not in lines[0]


def test_comment_starts_with_the_marker_and_lists_skipped_environments():
    comment = render_comment(
        [
            _result("prod", **{"prod-network": summarize(plan("create"))}),
            {"environment": "dev", "skipped": "repository variable `AWS_PLAN_ROLE_ARN_DEV` is not set"},
        ],
        header="checks: success",
    )
    assert comment.splitlines()[0] == MARKER
    assert comment.index("### dev") < comment.index("### prod")
    assert "Plans skipped: repository variable `AWS_PLAN_ROLE_ARN_DEV` is not set" in comment


def test_comment_is_cut_below_githubs_limit():
    many = StackSummary(add=1)
    result = _result("dev", **{f"dev-stack-{n:04d}-{'x' * 40}": many for n in range(2000)})
    comment = render_comment([result], footer="footer")
    assert len(comment) < 65536 and "truncated" in comment and comment.rstrip().endswith("footer")


def test_cli_comment_reads_result_files_and_skipped_json(tmp_path, capsys):
    (tmp_path / "plans-dev").mkdir()
    (tmp_path / "plans-dev" / "result.json").write_text(
        json.dumps(_result("dev", **{"dev-network": summarize(plan("mixed"))}))
    )
    skipped = json.dumps([{"environment": "prod", "skipped": "no role"}])
    assert plan_summary.main(["comment", str(tmp_path), "--skipped", skipped]) == 0
    out = capsys.readouterr().out
    assert "| dev-network | 3 | 1 | 3 |" in out and "### prod\n\nPlans skipped: no role" in out
