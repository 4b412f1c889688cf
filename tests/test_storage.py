"""<env>-storage and <env>-bootstrap: every bucket's protections, and the ECR repository."""

from __future__ import annotations

import json

import pytest

from tests.tf import one, resources

STORAGE_BUCKETS = ("models", "inputs", "outputs", "access-logs")


def bucket_parts(stack: dict, bucket_name: str) -> dict[str, dict]:
    """The bucket resource plus every companion resource pointing at it, by type."""
    buckets = {key: b for key, b in resources(stack, "aws_s3_bucket").items() if b["bucket"] == bucket_name}
    assert len(buckets) == 1, bucket_name
    key = next(iter(buckets))
    bucket_ref = f"${{aws_s3_bucket.{key}.id}}"
    parts = {"aws_s3_bucket": buckets[key], "key": key}
    for rtype in (
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_logging",
    ):
        found = [r for r in resources(stack, rtype).values() if r["bucket"] == bucket_ref]
        assert len(found) <= 1
        if found:
            parts[rtype] = found[0]
    return parts


def all_buckets(synth, environments):
    for name, env in environments.items():
        yield env, synth.stack(f"{name}-bootstrap"), env.state_bucket
        for purpose in STORAGE_BUCKETS:
            yield env, synth.stack(f"{name}-storage"), env.bucket_name(purpose)


def test_every_bucket_is_locked_down(synth, environments):
    for _env, stack, bucket in all_buckets(synth, environments):
        parts = bucket_parts(stack, bucket)
        block = parts["aws_s3_bucket_public_access_block"]
        assert all(
            block[flag] is True
            for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        ), bucket
        assert parts["aws_s3_bucket_ownership_controls"]["rule"]["object_ownership"] == "BucketOwnerEnforced"
        sse = parts["aws_s3_bucket_server_side_encryption_configuration"]["rule"][0][
            "apply_server_side_encryption_by_default"
        ]
        assert sse["sse_algorithm"] in ("AES256", "aws:kms")
        policy = json.loads(parts["aws_s3_bucket_policy"]["policy"])
        deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny[0]["Principal"] == "*" and deny[0]["Action"] == "s3:*"
        arn = f"${{aws_s3_bucket.{parts['key']}.arn}}"
        assert set(deny[0]["Resource"]) == {arn, f"{arn}/*"}
        rules = {r["id"]: r for r in parts["aws_s3_bucket_lifecycle_configuration"]["rule"]}
        assert (
            rules["abort-incomplete-multipart-uploads"]["abort_incomplete_multipart_upload"][0]["days_after_initiation"]
            == 7
        )
        # No bucket policy ever grants anyone outside the account or a service with a source condition.
        for stmt in policy["Statement"]:
            if stmt["Effect"] == "Allow":
                assert "Service" in stmt["Principal"] and "Condition" in stmt, bucket


def test_state_bucket(synth, environments):
    for env in environments.values():
        parts = bucket_parts(synth.stack(f"{env.name}-bootstrap"), env.state_bucket)
        assert parts["aws_s3_bucket_versioning"]["versioning_configuration"]["status"] == "Enabled"
        rules = {r["id"]: r for r in parts["aws_s3_bucket_lifecycle_configuration"]["rule"]}
        assert rules["expire-noncurrent-versions"]["noncurrent_version_expiration"][0]["noncurrent_days"] == 90
        assert parts["aws_s3_bucket"].get("force_destroy") is False


@pytest.mark.parametrize("purpose", ["models", "inputs", "outputs"])
def test_data_buckets_follow_config(synth, environments, purpose):
    for env in environments.values():
        stack = synth.stack(f"{env.name}-storage")
        settings = getattr(env.storage, purpose)
        parts = bucket_parts(stack, env.bucket_name(purpose))
        rules = {r["id"]: r for r in parts["aws_s3_bucket_lifecycle_configuration"]["rule"]}
        if settings.versioning:
            assert parts["aws_s3_bucket_versioning"]["versioning_configuration"]["status"] == "Enabled"
            assert (
                rules["expire-noncurrent-versions"]["noncurrent_version_expiration"][0]["noncurrent_days"]
                == settings.noncurrent_expire_days
            )
        else:
            assert "aws_s3_bucket_versioning" not in parts
        if settings.expire_days:
            assert rules["expire-objects"]["expiration"][0]["days"] == settings.expire_days
        else:
            assert "expire-objects" not in rules
        sse = parts["aws_s3_bucket_server_side_encryption_configuration"]["rule"][0]
        if settings.kms:
            assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
            assert sse["apply_server_side_encryption_by_default"]["kms_master_key_id"].startswith("${aws_kms_key.")
            assert sse["bucket_key_enabled"] is True
        else:
            assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"
        assert parts["aws_s3_bucket"]["force_destroy"] is settings.force_destroy
        logging = parts["aws_s3_bucket_logging"]
        assert logging["target_bucket"].startswith("${aws_s3_bucket.access-logs_bucket")
        assert logging["target_prefix"] == f"{env.bucket_name(purpose)}/"


def test_models_versioned_outputs_expire(environments):
    for env in environments.values():
        assert env.storage.models.versioning
        assert env.storage.outputs.expire_days


def test_kms_keys_rotate(synth, environments):
    for env in environments.values():
        for key in resources(synth.stack(f"{env.name}-storage"), "aws_kms_key").values():
            assert key["enable_key_rotation"] is True


def test_access_log_bucket_accepts_only_s3_log_delivery(synth, environments):
    for env in environments.values():
        parts = bucket_parts(synth.stack(f"{env.name}-storage"), env.bucket_name("access-logs"))
        policy = json.loads(parts["aws_s3_bucket_policy"]["policy"])
        allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
        assert len(allow) == 1
        assert allow[0]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert allow[0]["Action"] == ["s3:PutObject"]
        assert allow[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": env.account_id}
        assert sorted(allow[0]["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(
            f"arn:aws:s3:::{env.bucket_name(p)}" for p in ("models", "inputs", "outputs")
        )


def test_bucket_names_are_globally_unique_per_env(synth, environments):
    names = [
        bucket["bucket"] for stack in synth.stacks.values() for bucket in resources(stack, "aws_s3_bucket").values()
    ]
    assert len(names) == len(set(names))
    for env in environments.values():
        assert env.account_id in env.bucket_name("models") and env.region in env.bucket_name("models")


def test_ecr_repository(synth, environments):
    for env in environments.values():
        stack = synth.stack(f"{env.name}-storage")
        repo = one(stack, "aws_ecr_repository")
        assert repo["name"] == f"{env.project}-{env.name}/{env.image.repository}"
        assert repo["image_tag_mutability"] == "IMMUTABLE"
        assert repo["image_scanning_configuration"]["scan_on_push"] is True
        assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"
        assert repo["force_delete"] is (not env.production)
        lifecycle = json.loads(one(stack, "aws_ecr_lifecycle_policy")["policy"])
        rule = lifecycle["rules"][0]
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["selection"]["countNumber"] == env.image.keep_images
        assert rule["action"] == {"type": "expire"}
        assert "ecr_repository_url" in stack["output"]
