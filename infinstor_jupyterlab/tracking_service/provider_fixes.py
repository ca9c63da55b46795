"""What to do at each identity provider, per problem `infinstor service check` finds.

`provider_of` tells the provider from the issuer's address; `fix_for` gives the fix for a problem
(an opaque token, a wrong audience, no organisation or groups claim, group overage, an ID token
given for an access token) at that provider. docs/identity-providers.md has the steps in full.
"""

from __future__ import annotations

PROVIDERS = {
    "entra": "Microsoft Entra ID",
    "okta": "Okta",
    "google": "Google Workspace",
    "keycloak": "Keycloak",
    "auth0": "Auth0",
    "cognito": "Amazon Cognito",
    "generic": "your identity provider",
}

# What to do at the provider, per problem and provider (docs/identity-providers.md has the steps).
FIXES: dict[str, dict[str, str]] = {
    "opaque": {
        "entra": "request a token for this service's own API (Expose an API; scope api://<app id>/.default), not for Microsoft Graph: Graph tokens cannot be checked by anyone but Graph",
        "okta": "use a custom authorization server (e.g. /oauth2/default): the org authorization server's access tokens are for Okta's own APIs",
        "google": "Google's access tokens are opaque: put a broker that issues JWT access tokens (Keycloak, Auth0, Okta, Cognito) in front of Google Workspace",
        "keycloak": "Keycloak issues JWT access tokens; check that the token given is the access token of this realm",
        "auth0": "pass audience=<the API identifier> when asking for the token: without it Auth0 issues an opaque token for /userinfo",
        "cognito": "give the access token (a JWT) of the user pool's app client, not a token of another service",
        "generic": "configure the provider to issue JWT access tokens (RFC 9068) for this service's audience",
    },
    "audience": {
        "entra": "set oidc.audience to the Application ID URI (api://...) for v1 tokens or the application (client) id for v2 tokens (accessTokenAcceptedVersion: 2 in the manifest), and request the scope api://<app id>/.default",
        "okta": "set oidc.audience to the custom authorization server's Audience (Security > API > the server > Settings)",
        "google": "the broker's access tokens must name this service as audience",
        "keycloak": "add an Audience mapper (Included Custom Audience = oidc.audience) to the client's dedicated scope",
        "auth0": "set oidc.audience to the API identifier, and pass it as audience when asking for tokens",
        "cognito": "Cognito access tokens carry no aud: set oidc.audience_claim: client_id and oidc.audience to the app client id",
        "generic": "make the provider put oidc.audience in the access token's aud (a resource indicator or an audience mapper)",
    },
    "org": {
        "entra": "use the tenant: oidc.claims.org: tid, with oidc.organisations mapping the tenant id to a name (e.g. {<tenant id>: acme})",
        "okta": "add a custom claim to the authorization server (e.g. org = user.profile.organization, included in the access token)",
        "google": "have the broker map Google's hd (hosted domain) claim into the access token, and map it with oidc.organisations ({acme.com: acme})",
        "keycloak": "enable Organizations and the organization client scope, or add a User Attribute / Hardcoded claim mapper named org, added to the access token",
        "auth0": "use Organizations (org_id, mapped with oidc.organisations) or add a namespaced claim in a post-login Action (api.accessToken.setCustomClaim)",
        "cognito": "add the organisation in a pre-token-generation trigger (V2, access token customization), e.g. custom:org",
        "generic": "add an organisation claim to the access token and name it in oidc.claims.org",
    },
    "groups": {
        "entra": "App registration > Token configuration > Add groups claim (Security groups, 'Groups assigned to the application' keeps it short); the claim holds object ids: grant roles to those, or provision groups by SCIM",
        "okta": "add a groups claim to the authorization server (Claims > Add Claim, include in Access Token, Filter e.g. Matches regex .*)",
        "google": "Google sends no groups: provision them by SCIM from the broker, or set scim.groups: scim and manage groups over SCIM",
        "keycloak": "add a Group Membership mapper named groups (Full group path off, Add to access token on) to the client's dedicated scope",
        "auth0": "add the user's groups or roles as a namespaced claim in a post-login Action and name it in oidc.claims.groups",
        "cognito": "Cognito puts the user pool groups in cognito:groups: set oidc.claims.groups: cognito:groups",
        "generic": "add a groups claim to the access token and name it in oidc.claims.groups, or provision groups by SCIM",
    },
    "overage": {
        "entra": "the user is in more groups than fit in a token (200), so Entra ID left them out: provision groups by SCIM (the service then takes this user's groups from SCIM), or emit only the groups assigned to the application",
        "generic": "the provider left the groups out (too many): provision them by SCIM, or emit fewer groups",
    },
    "id_token": {
        "generic": "this is an ID token (for the client), not an access token: give the access_token the provider returned",
    },
}


def provider_of(issuer: str) -> str:
    host = issuer.lower()
    for needle, provider in (
        ("login.microsoftonline.com", "entra"),
        ("sts.windows.net", "entra"),
        (".okta.com", "okta"),
        (".oktapreview.com", "okta"),
        (".okta-emea.com", "okta"),
        ("accounts.google.com", "google"),
        ("/realms/", "keycloak"),
        (".auth0.com", "auth0"),
        ("cognito-idp.", "cognito"),
    ):
        if needle in host:
            return provider
    return "generic"


def fix_for(problem: str, provider: str) -> str:
    fixes = FIXES[problem]
    text = fixes.get(provider) or fixes["generic"]
    return f"{PROVIDERS[provider]}: {text}" if provider in fixes else text
