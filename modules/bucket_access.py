"""IAM statements that grant a principal one kind of access to one bucket (and its KMS key, if any)."""

from __future__ import annotations

from dataclasses import dataclass

from modules.iam import statement


@dataclass(frozen=True)
class BucketGrant:
    sid: str  # statement id prefix, e.g. "Models"
    arn: str
    # The bucket's SSE-KMS key; None for SSE-S3 buckets.
    kms_key_arn: str | None
    region: str


def _kms(grant: BucketGrant, actions: list[str]) -> list[dict]:
    if grant.kms_key_arn is None:
        return []
    # Only through S3 in this region: the key cannot be used directly with these credentials.
    return [
        statement(
            actions,
            grant.kms_key_arn,
            sid=f"{grant.sid}Kms",
            condition={"StringEquals": {"kms:ViaService": f"s3.{grant.region}.amazonaws.com"}},
        )
    ]


def read_statements(grant: BucketGrant) -> list[dict]:
    return [
        statement(["s3:ListBucket"], grant.arn, sid=f"{grant.sid}List"),
        statement(["s3:GetObject"], f"{grant.arn}/*", sid=f"{grant.sid}Read"),
        *_kms(grant, ["kms:Decrypt"]),
    ]


def write_statements(grant: BucketGrant) -> list[dict]:
    """Create objects only: no listing, reading back or deleting."""
    return [
        statement(["s3:PutObject", "s3:AbortMultipartUpload"], f"{grant.arn}/*", sid=f"{grant.sid}Write"),
        # Multipart uploads to an SSE-KMS bucket need Decrypt as well as GenerateDataKey.
        *_kms(grant, ["kms:GenerateDataKey", "kms:Decrypt"]),
    ]


def read_write_statements(grant: BucketGrant) -> list[dict]:
    """What Mountpoint for S3 needs to mount a bucket read/write (with allow-delete)."""
    return [
        statement(["s3:ListBucket"], grant.arn, sid=f"{grant.sid}List"),
        statement(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
            f"{grant.arn}/*",
            sid=f"{grant.sid}ReadWrite",
        ),
        *_kms(grant, ["kms:GenerateDataKey", "kms:Decrypt"]),
    ]
