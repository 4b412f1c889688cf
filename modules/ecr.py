"""EcrRepository: immutable tags, scan on push, KMS encryption, lifecycle keeping the last N images."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository as AwsEcrRepository,
)
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from constructs import Construct


@dataclass(frozen=True)
class EcrRepositorySettings:
    name: str
    keep_images: int
    # Allow `terraform destroy` to delete a repository that still holds images.
    force_delete: bool = False


class EcrRepository(Construct):
    def __init__(self, scope: Construct, id_: str, settings: EcrRepositorySettings) -> None:
        super().__init__(scope, id_)
        self.repository = AwsEcrRepository(
            self,
            "repository",
            name=settings.name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS")],
            force_delete=settings.force_delete,
        )
        EcrLifecyclePolicy(
            self,
            "lifecycle",
            repository=self.repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {settings.keep_images} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": settings.keep_images,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                },
                indent=2,
            ),
        )

    @property
    def url(self) -> str:
        return self.repository.repository_url

    @property
    def arn(self) -> str:
        return self.repository.arn
