"""IAM policy statements for the GitHub Actions roles of one environment (plan and deploy).

Pure functions, no cdktf: the `<env>-ci` stack renders them and the tests evaluate them.

Scoping, in order of preference:
- by name: every resource of an environment is named `<project>-<env>-...` (log groups contain it,
  the EKS cluster is `env.cluster_name`), so ARN patterns pin the environment;
- by tag where names are random ids (EC2, KMS keys, load balancers, Cognito): the aws provider's
  default_tags put `Project` and `Environment` on every create request (`aws:RequestTag`) and on
  every resource (`aws:ResourceTag`);
- account-wide only for list/describe calls without resource-level permissions, and CloudFront,
  whose ids are random and whose policies and origin access controls carry no tags.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.iam import statement

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"

# Services the stacks hand a role to (iam:PassRole is limited to them).
PASS_ROLE_SERVICES = (
    "eks.amazonaws.com",
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "vpc-flow-logs.amazonaws.com",
    "pods.eks.amazonaws.com",
    "events.amazonaws.com",
)
# Service-linked roles AWS creates on first use of these services.
SERVICE_LINKED_ROLES = (
    "eks.amazonaws.com",
    "eks-nodegroup.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "autoscaling.amazonaws.com",
    "spot.amazonaws.com",
    "cloudfront.amazonaws.com",
    "vpcorigin.cloudfront.amazonaws.com",
    "wafv2.amazonaws.com",
    "delivery.logs.amazonaws.com",
)
# AWS managed policies the stacks attach (EKS node/cluster/CNI, SSM agent, ECR pull).
ATTACHABLE_MANAGED_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKS*",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)


@dataclass(frozen=True)
class CiScope:
    """What the CI roles of one environment may touch."""

    project: str
    environment: str
    account_id: str
    region: str
    cluster_name: str
    state_bucket: str
    production: bool = True

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.environment}"

    @property
    def ci_role_prefix(self) -> str:
        return f"{self.prefix}-ci-"

    @property
    def oidc_provider_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:oidc-provider/{GITHUB_OIDC_HOST}"

    @property
    def ci_state_objects(self) -> str:
        return f"arn:aws:s3:::{self.state_bucket}/{self.environment}/{self.environment}-ci.tfstate*"

    def tags(self, kind: str) -> dict:
        """Condition: the request (`RequestTag`) or resource (`ResourceTag`) carries this environment's tags."""
        return {"StringEquals": {f"aws:{kind}/Project": self.project, f"aws:{kind}/Environment": self.environment}}

    def _arn(self, service: str, resource: str, region: str | None = None) -> str:
        return f"arn:aws:{service}:{self.region if region is None else region}:{self.account_id}:{resource}"

    def log_groups(self) -> list[str]:
        # Any region: WAF and CloudFront log to us-east-1.
        names = (f"*{self.prefix}", f"*{self.prefix}-*", f"*{self.prefix}/*", f"/aws/eks/{self.cluster_name}/*")
        return [self._arn("logs", f"log-group:{name}", region="*") for name in names]

    def eks(self) -> list[str]:
        # cluster/<name> and nodegroup|addon|access-entry|podidentityassociation/<name>/...
        return [self._arn("eks", f"*/{self.cluster_name}"), self._arn("eks", f"*/{self.cluster_name}/*")]

    def iam(self, kinds: tuple[str, ...] = ("role", "policy", "instance-profile")) -> list[str]:
        return [f"arn:aws:iam::{self.account_id}:{kind}/{self.prefix}-*" for kind in kinds]

    def tagged(self) -> list[str]:
        """This account's EC2, ELB, KMS key and Cognito ARNs: the tag conditions pick the environment's."""
        a = self.account_id
        return [
            f"arn:aws:ec2:*:{a}:*",
            f"arn:aws:elasticloadbalancing:*:{a}:*",
            f"arn:aws:kms:*:{a}:key/*",
            f"arn:aws:cognito-idp:*:{a}:userpool/*",
        ]

    def named(self) -> list[str]:
        """Name-scoped ARNs of the services whose resources the stacks name `<project>-<env>-...`."""
        p = self.prefix
        return [
            self._arn("sqs", f"{p}-*"),
            self._arn("sns", f"{p}-*"),
            self._arn("lambda", f"function:{p}-*"),
            self._arn("events", f"rule/{p}-*"),
            self._arn("cloudwatch", f"alarm:{p}-*"),
            self._arn("ecr", f"repository/{p}/*"),
            self._arn("ssm", f"document/{p}-*"),
            # WAF for CloudFront lives in us-east-1 (scope "global"), the ALB's in the region.
            self._arn("wafv2", f"*/*/{p}/*", region="*"),
            self._arn("wafv2", f"*/*/{p}-*/*", region="*"),
            self._arn("wafv2", "*/managedruleset/*/*", region="*"),
            *self.log_groups(),
            *self.eks(),
            # CloudWatch Logs delivery sources, destinations and deliveries (ids, not names).
            self._arn("logs", "delivery*:*", region="*"),
        ]


def _state_read(scope: CiScope) -> list[dict]:
    bucket = f"arn:aws:s3:::{scope.state_bucket}"
    return [
        # `terraform init` lists the bucket (workspaces); state objects of this environment only.
        statement(["s3:ListBucket"], bucket, sid="StateList"),
        statement(["s3:GetObject"], f"{bucket}/{scope.environment}/*", sid="StateRead"),
    ]


def read_statements(scope: CiScope) -> list[dict]:
    """What `terraform plan` needs to refresh every stack: describe/list/get, no data reads, no writes."""
    a = scope.account_id
    return [
        *_state_read(scope),
        # Calls without resource-level permissions: AWS authorizes them only on "*". Named one by one,
        # except the EC2 and ELB describes (Terraform's refresh calls dozens of them; all read-only).
        statement(
            [
                "ec2:Describe*",
                "elasticloadbalancing:Describe*",
                "eks:DescribeAddonVersions",
                "eks:ListAccessPolicies",
                "kms:ListAliases",
                "logs:DescribeLogGroups",
                "logs:DescribeResourcePolicies",
                "logs:DescribeDeliveries",
                "logs:DescribeDeliverySources",
                "logs:DescribeDeliveryDestinations",
                "lambda:ListEventSourceMappings",
                "acm:ListCertificates",
                "cloudfront:ListCachePolicies",
                "cloudfront:ListOriginRequestPolicies",
                "cloudfront:ListResponseHeadersPolicies",
                "cloudfront:ListDistributions",
                "cloudfront:ListVpcOrigins",
                "cloudfront:ListOriginAccessControls",
            ],
            "*",
            sid="DescribeUnscoped",
        ),
        statement(
            ["s3:GetBucket*", "s3:Get*Configuration", "s3:ListBucket"],
            f"arn:aws:s3:::{scope.prefix}-*",
            sid="BucketsRead",
        ),
        statement(
            [
                "sqs:GetQueueAttributes",
                "sqs:ListQueueTags",
                "sns:GetTopicAttributes",
                "sns:ListTagsForResource",
                "lambda:GetFunction*",
                "lambda:GetPolicy",
                "lambda:ListVersionsByFunction",
                "lambda:ListTags",
                "events:DescribeRule",
                "events:ListTargetsByRule",
                "events:ListTagsForResource",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:ListTagsForResource",
                "ecr:DescribeRepositories",
                "ecr:GetLifecyclePolicy",
                "ecr:GetRepositoryPolicy",
                "ecr:ListTagsForResource",
                "ssm:DescribeDocument*",
                "ssm:GetDocument",
                "wafv2:GetWebACL",
                "wafv2:GetIPSet",
                "wafv2:GetLoggingConfiguration",
                "wafv2:ListTagsForResource",
                "logs:ListTagsForResource",
                "logs:ListTagsLogGroup",
                "logs:GetDelivery*",
                "eks:Describe*",
                "eks:List*",
            ],
            scope.named(),
            sid="NamedRead",
        ),
        statement(
            ["iam:GetRole*", "iam:GetPolicy*", "iam:GetInstanceProfile", "iam:GetOpenIDConnectProvider", "iam:List*"],
            [*scope.iam(), scope.oidc_provider_arn, "arn:aws:iam::aws:policy/*"],
            sid="IamRead",
        ),
        statement(
            [
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "acm:DescribeCertificate",
                "acm:ListTagsForCertificate",
                "cognito-idp:Describe*",
                "cognito-idp:GetUserPoolMfaConfig",
                "cognito-idp:ListTagsForResource",
                "cloudfront:Get*",
                "cloudfront:Describe*",
                "lambda:GetEventSourceMapping",
            ],
            [
                f"arn:aws:lambda:{scope.region}:{a}:event-source-mapping:*",
                f"arn:aws:kms:*:{a}:key/*",
                f"arn:aws:acm:*:{a}:certificate/*",
                f"arn:aws:cognito-idp:{scope.region}:{a}:userpool/*",
                f"arn:aws:cloudfront::{a}:*",
            ],
            sid="AccountRead",
        ),
        # EKS AMI ids and similar public parameters that data sources look up.
        statement(
            ["ssm:GetParameter", "ssm:GetParameters"], f"arn:aws:ssm:{scope.region}::parameter/aws/service/*", sid="Ami"
        ),
    ]


def plan_statements(scope: CiScope) -> list[dict]:
    # No lock-file write: plans run with `-lock=false` (docs/ci.md, "Why plans do not lock").
    return read_statements(scope)


def deploy_statements(scope: CiScope) -> list[dict]:
    """Plan's reads plus writes on this environment's resources, its state, and nothing of CI itself."""
    a, r, p = scope.account_id, scope.region, scope.prefix
    bucket = f"arn:aws:s3:::{scope.state_bucket}"
    # The read statements the write statements below already cover (same ARNs, `service:*` or the
    # bucket-level Get/List) are left out: IAM counts a role's inline policies against 10,240 characters.
    covered = ("BucketsRead", "NamedRead")
    return [
        *(s for s in read_statements(scope) if s["Sid"] not in covered),
        statement(
            ["s3:PutObject", "s3:DeleteObject"],
            [f"{bucket}/{scope.environment}/*.tfstate", f"{bucket}/{scope.environment}/*.tflock"],
            sid="StateWrite",
        ),
        # Buckets by name, bucket-level actions only: `p-*` also matches every object ARN, so no `s3:*`.
        statement(
            [
                "s3:CreateBucket",
                "s3:DeleteBucket*",
                "s3:PutBucket*",
                "s3:GetBucket*",
                "s3:Put*Configuration",
                "s3:Get*Configuration",
                "s3:ListBucket*",
            ],
            f"arn:aws:s3:::{p}-*",
            sid="Buckets",
        ),
        # Then queues, functions, rules, alarms, repositories, log groups, WAF, the cluster and its parts.
        statement(
            ["sqs:*", "sns:*", "lambda:*", "events:*", "cloudwatch:*", "ecr:*", "ssm:*", "wafv2:*", "logs:*", "eks:*"],
            scope.named(),
            sid="Named",
        ),
        statement(
            ["lambda:*EventSourceMapping", "lambda:TagResource"],
            f"arn:aws:lambda:{r}:{a}:event-source-mapping:*",
            sid="EventSourceMappings",
            condition={"ArnLike": {"lambda:FunctionArn": f"arn:aws:lambda:{r}:{a}:function:{p}-*"}},
        ),
        # Tag-scoped: create with this environment's tags, then manage what carries them.
        statement(
            [
                "ec2:Create*",
                "ec2:AllocateAddress",
                "elasticloadbalancing:Create*",
                "elasticloadbalancing:AddTags",
                "kms:TagResource",
            ],
            scope.tagged(),
            sid="CreateTagged",
            condition=scope.tags("RequestTag"),
        ),
        # Creates AWS authorizes only on "*" (the new resource has no ARN yet).
        statement(
            ["kms:CreateKey", "cognito-idp:CreateUserPool"],
            "*",
            sid="CreateUnscoped",
            condition=scope.tags("RequestTag"),
        ),
        statement(
            ["ec2:*", "elasticloadbalancing:*", "kms:*", "cognito-idp:*"],
            scope.tagged(),
            sid="ManageTagged",
            condition=scope.tags("ResourceTag"),
        ),
        statement(
            ["kms:*Alias"],
            [f"arn:aws:kms:*:{a}:alias/{p}-*", f"arn:aws:kms:*:{a}:alias/s3/{p}-*"],
            sid="KeyAliases",
        ),
        # ECR and EKS encrypt with KMS grants made through the service (the AWS managed key for ECR).
        statement(
            ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"],
            f"arn:aws:kms:{r}:{a}:key/*",
            sid="ServiceGrants",
            condition={"StringEquals": {"kms:ViaService": [f"ecr.{r}.amazonaws.com", f"eks.{r}.amazonaws.com"]}},
        ),
        statement(["cloudfront:*"], f"arn:aws:cloudfront::{a}:*", sid="CloudFront"),
        *(
            # `force_destroy` empties scratch buckets outside production; production data is never deleted.
            []
            if scope.production
            else [statement(["s3:DeleteObject", "s3:DeleteObjectVersion"], f"arn:aws:s3:::{p}-*/*", sid="EmptyBuckets")]
        ),
        # Log delivery (WAF, CloudFront, ALB) is account-level configuration without resource ARNs.
        statement(
            [
                "logs:CreateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DeleteResourcePolicy",
            ],
            "*",
            sid="LogDelivery",
        ),
        # IAM: roles, policies and instance profiles named for this environment.
        statement(
            [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:UpdateRole*",
                "iam:UpdateAssumeRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
                "iam:*InstanceProfile*",
                "iam:CreatePolicy*",
                "iam:DeletePolicy*",
                "iam:SetDefaultPolicyVersion",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            ],
            scope.iam(),
            sid="Iam",
        ),
        statement(
            ["iam:AttachRolePolicy"],
            scope.iam(("role",)),
            sid="AttachKnownPolicies",
            condition={"ArnLike": {"iam:PolicyARN": [*ATTACHABLE_MANAGED_POLICIES, f"arn:aws:iam::{a}:policy/{p}-*"]}},
        ),
        statement(
            ["iam:PassRole"],
            scope.iam(("role",)),
            sid="PassRole",
            condition={"StringEquals": {"iam:PassedToService": list(PASS_ROLE_SERVICES)}},
        ),
        statement(
            ["iam:CreateServiceLinkedRole"],
            f"arn:aws:iam::{a}:role/aws-service-role/*",
            sid="ServiceLinkedRoles",
            condition={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}},
        ),
        # CI cannot change its own access: the CI roles, the OIDC provider and the ci stack's state
        # are managed by an administrator (`cdktf deploy <env>-ci`).
        statement(
            ["iam:*"],
            [f"arn:aws:iam::{a}:role/{scope.ci_role_prefix}*", scope.oidc_provider_arn],
            sid="DenyCiAccess",
            effect="Deny",
        ),
        statement(["s3:PutObject", "s3:DeleteObject"], scope.ci_state_objects, sid="DenyCiState", effect="Deny"),
        # Tagging is how resources become this environment's: only at creation, or if already ours.
        statement(
            ["ec2:CreateTags", "elasticloadbalancing:AddTags"],
            scope.tagged()[:2],
            sid="DenyTagTakeover",
            effect="Deny",
            condition={
                "Null": {"ec2:CreateAction": "true", "elasticloadbalancing:CreateAction": "true"},
                "StringNotEquals": {"aws:ResourceTag/Project": scope.project},
            },
        ),
    ]


def github_trust_condition(repository: str, subjects: list[str]) -> dict:
    """Trust condition: GitHub's token for the STS audience, from this repository, for these contexts."""
    return {
        "StringEquals": {
            f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
            f"{GITHUB_OIDC_HOST}:sub": [f"repo:{repository}:{subject}" for subject in subjects],
        }
    }


def plan_subjects(deploy_branch: str) -> list[str]:
    # Pull requests, and the deploy workflow's plan job on the protected branch (read-only either way).
    return ["pull_request", f"ref:refs/heads/{deploy_branch}"]


def deploy_subjects(deploy_branch: str, github_environment: str | None) -> list[str]:
    # With a GitHub environment, `sub` names the environment; its deployment-branch rule pins the branch.
    return [f"environment:{github_environment}"] if github_environment else [f"ref:refs/heads/{deploy_branch}"]
