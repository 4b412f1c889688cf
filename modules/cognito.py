"""CognitoLogin: who may use ComfyUI when edge.access_control is `cognito`.

A user pool where only administrators create users (no self sign-up), its hosted login domain,
and two app clients:
- `alb`: confidential client (with secret) the ALB uses for the browser login (authorization code
  flow, callback `https://<domain>/oauth2/idpresponse`); the ALB then keeps a session cookie.
- `api`: public client for the CLI and scripts. They sign in with `aws cognito-idp initiate-auth`
  (USER_PASSWORD_AUTH) and send the access token as `Authorization: Bearer <token>`; the ALB
  verifies it (issuer, signature, expiry, `token_use=access`, `client_id`=this client).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cognito_user_pool import (
    CognitoUserPool,
    CognitoUserPoolAccountRecoverySetting,
    CognitoUserPoolAccountRecoverySettingRecoveryMechanism,
    CognitoUserPoolAdminCreateUserConfig,
    CognitoUserPoolPasswordPolicy,
    CognitoUserPoolSoftwareTokenMfaConfiguration,
)
from cdktf_cdktf_provider_aws.cognito_user_pool_client import (
    CognitoUserPoolClient,
    CognitoUserPoolClientTokenValidityUnits,
)
from cdktf_cdktf_provider_aws.cognito_user_pool_domain import CognitoUserPoolDomain
from constructs import Construct

from modules.alb import AlbCognitoLogin

OAUTH_SCOPES = ["openid", "email"]


@dataclass(frozen=True)
class CognitoLoginSettings:
    name: str
    region: str
    # The app's custom domain (the ALB login needs HTTPS on it).
    app_domain: str
    # Hosted login: `<prefix>.auth.<region>.amazoncognito.com` (globally unique per region).
    domain_prefix: str
    deletion_protection: bool
    access_token_minutes: int = 60
    refresh_token_days: int = 30


class CognitoLogin(Construct):
    def __init__(self, scope: Construct, id_: str, settings: CognitoLoginSettings) -> None:
        super().__init__(scope, id_)
        self.settings = settings
        self.user_pool = CognitoUserPool(
            self,
            "pool",
            name=settings.name,
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            admin_create_user_config=CognitoUserPoolAdminCreateUserConfig(allow_admin_create_user_only=True),
            password_policy=CognitoUserPoolPasswordPolicy(
                minimum_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=True,
                temporary_password_validity_days=7,
            ),
            mfa_configuration="OPTIONAL",
            software_token_mfa_configuration=CognitoUserPoolSoftwareTokenMfaConfiguration(enabled=True),
            account_recovery_setting=CognitoUserPoolAccountRecoverySetting(
                recovery_mechanism=[
                    CognitoUserPoolAccountRecoverySettingRecoveryMechanism(name="verified_email", priority=1)
                ]
            ),
            deletion_protection="ACTIVE" if settings.deletion_protection else "INACTIVE",
        )
        self.domain = CognitoUserPoolDomain(
            self, "domain", domain=settings.domain_prefix, user_pool_id=self.user_pool.id
        )
        app_url = f"https://{settings.app_domain}"
        self.alb_client = CognitoUserPoolClient(
            self,
            "alb-client",
            name=f"{settings.name}-alb",
            user_pool_id=self.user_pool.id,
            generate_secret=True,
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],
            allowed_oauth_scopes=OAUTH_SCOPES,
            supported_identity_providers=["COGNITO"],
            callback_urls=[f"{app_url}/oauth2/idpresponse"],
            logout_urls=[f"{app_url}/"],
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
        )
        self.api_client = CognitoUserPoolClient(
            self,
            "api-client",
            name=f"{settings.name}-api",
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            explicit_auth_flows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            access_token_validity=settings.access_token_minutes,
            id_token_validity=settings.access_token_minutes,
            refresh_token_validity=settings.refresh_token_days,
            token_validity_units=[
                CognitoUserPoolClientTokenValidityUnits(
                    access_token="minutes",  # noqa: S106 (units, not secrets)
                    id_token="minutes",  # noqa: S106
                    refresh_token="days",  # noqa: S106
                )
            ],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
        )

    @property
    def issuer(self) -> str:
        # The pool's `endpoint` is `cognito-idp.<region>.amazonaws.com/<pool id>`.
        return f"https://{self.user_pool.endpoint}"

    @property
    def hosted_login_url(self) -> str:
        return f"https://{self.settings.domain_prefix}.auth.{self.settings.region}.amazoncognito.com"

    def alb_login(self) -> AlbCognitoLogin:
        return AlbCognitoLogin(
            user_pool_arn=self.user_pool.arn,
            user_pool_client_id=self.alb_client.id,
            user_pool_domain=self.domain.domain,
            token_issuer=self.issuer,
            api_client_id=self.api_client.id,
        )
