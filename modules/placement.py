"""Put every resource and data source of a construct on one provider (e.g. the us-east-1 alias).

CloudFront-scoped WAF, its log group and key, and CloudFront's log delivery must live in us-east-1.
Constructs such as KmsKey and log_group take no provider argument; pinning the finished construct
keeps them unchanged and covers every resource inside, including ones added later.
"""

from __future__ import annotations

from cdktf import TerraformDataSource, TerraformProvider, TerraformResource
from constructs import Construct


def pin_to_provider(construct: Construct, provider: TerraformProvider) -> None:
    for node in construct.node.find_all():
        if isinstance(node, (TerraformResource, TerraformDataSource)):
            node.provider = provider
