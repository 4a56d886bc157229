"""Google Ads Customer Match through the Data Manager API.

Adds go to `POST /v1/audienceMembers:ingest`, removals to `POST /v1/audienceMembers:remove`,
each naming one destination (the operating account and, as `productDestinationId`, the user
list) and at most 10 000 audience members, identified by `userData.userIdentifiers`: the
SHA-256 of the normalised email, of the E.164 phone number (with `+`), and an address
(hashed given and family names, country and postal code in clear), all `encoding: HEX`.
`check()` reads the user list (`GET /v1/accountTypes/GOOGLE_ADS/accounts/{id}/userLists/{id}`).

Choices where the documentation leaves room, each the closest documented behaviour:

- **Consent** (`consent.adUserData`, `consent.adPersonalization`) is sent only as configured;
  the default says nothing (`CONSENT_STATUS_UNSPECIFIED`), because Google reads missing
  consent as *not consented* and we never claim a consent the operator has not stated. EEA
  members need both set to `CONSENT_GRANTED` to be used.
- **Customer Match terms** must be accepted when ingesting user data; the connector states
  acceptance (`termsOfService`) only when `accept_customer_match_terms` is set.
- **An address** matches only with all four parts. A row with some but not all of them keeps
  its email and phone and drops the partial address (it could never match); a row left with
  no email, phone or complete address is invalid, never sent.
- **Errors**: the API fails fast (a request with a bad member is refused whole with 400
  `INVALID_ARGUMENT`, nothing applied). When its `BadRequest.fieldViolations` name members
  (`audience_members[i]`), those become rejections and the rest is sent again at once; a 400
  that names no member refuses the request (delivery bisects it). 401/403 deny access; 429
  `RESOURCE_EXHAUSTED` (sent without `Retry-After`) and 5xx are transient.
- **Updates** ingest the member's current identifiers. The API removes only what it is told,
  so when they changed (a new email), the engine first removes the identifiers the member
  was sent under (`SyncEngine._retire_old_identities`).
- **Credentials**: an access token as it is, or (for syncs that outlive its hour) an OAuth
  client and a refresh token, from which `app.destinations.google_oauth` obtains and renews
  access tokens; a refused refresh token denies access.
- **Rate limit**: 300 requests a minute per Google Cloud project. Runs paced together are
  those naming the same `quota_project_id` (sent as `x-goog-user-project`).

Docs: https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/ingest
https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/remove
https://developers.google.com/data-manager/api/reference/rest/v1/UserData
https://developers.google.com/data-manager/api/reference/rest/v1/Consent
https://developers.google.com/data-manager/api/devguides/limits
https://developers.google.com/data-manager/api/devguides/concepts/understand-errors
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, field_validator, model_validator

from app.destinations.base import Batch, BatchResult, Operation, Record
from app.destinations.config import VendorConfig, http_url, secret_field
from app.destinations.google_oauth import TOKEN_URL, FixedToken, RefreshedToken
from app.destinations.identifiers import InvalidValue, Normalizer
from app.destinations.spec import BuildOptions, DestinationSpec, FieldSpec, RateLimit
from app.destinations.vendor_http import VendorClient
from models.enums import DestinationType

API_URL = "https://datamanager.googleapis.com"
MAX_MEMBERS = 10_000
RATE_LIMIT = RateLimit(requests=300, per_seconds=60.0)

ConsentStatus = Literal["CONSENT_GRANTED", "CONSENT_DENIED", "CONSENT_STATUS_UNSPECIFIED"]
_MEMBER_PATH = re.compile(r"audience_?members\[(\d+)\]", re.IGNORECASE)


class GoogleAdsConfig(VendorConfig):
    base_url: str = Field(default=API_URL, max_length=2000)
    access_token: str | None = secret_field(
        default=None,
        min_length=1,
        max_length=4000,
        description="OAuth 2.0 access token with the datamanager scope (lives about an hour; "
        "for syncs that keep running, give client_id, client_secret and refresh_token instead)",
    )
    client_id: str | None = Field(
        default=None, min_length=1, max_length=300, description="OAuth 2.0 client id"
    )
    client_secret: str | None = secret_field(
        default=None, min_length=1, max_length=300, description="OAuth 2.0 client secret"
    )
    refresh_token: str | None = secret_field(
        default=None,
        min_length=1,
        max_length=4000,
        description="OAuth 2.0 refresh token (offline access, datamanager scope): access "
        "tokens are obtained and renewed with it",
    )
    token_url: str = Field(
        default=TOKEN_URL, max_length=2000, description="Google's OAuth 2.0 token endpoint"
    )
    operating_account_id: str = Field(
        pattern=r"^\d{1,20}$", description="Google Ads customer ID that owns the list, no dashes"
    )
    user_list_id: str = Field(
        pattern=r"^\d{1,20}$", description="The Customer Match user list (productDestinationId)"
    )
    login_account_id: str | None = Field(
        default=None,
        pattern=r"^\d{1,20}$",
        description="Manager account the credentials act through, when not the operating one",
    )
    ad_user_data_consent: ConsentStatus = "CONSENT_STATUS_UNSPECIFIED"
    ad_personalization_consent: ConsentStatus = "CONSENT_STATUS_UNSPECIFIED"
    accept_customer_match_terms: bool = Field(
        default=False,
        description="State that the Customer Match terms of service are accepted",
    )
    quota_project_id: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[a-z][a-z0-9-]{4,62}$",
        description="Google Cloud project whose quota the calls use (x-goog-user-project)",
    )

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _credentials(self) -> GoogleAdsConfig:
        refresh = (self.client_id, self.client_secret, self.refresh_token)
        if self.access_token and any(refresh):
            raise ValueError(
                "set access_token, or client_id, client_secret and refresh_token, not both"
            )
        if not self.access_token and not all(refresh):
            raise ValueError(
                "set access_token, or all of client_id, client_secret and refresh_token"
            )
        return self


EMAIL, PHONE = "hashedEmail", "hashedPhoneNumber"
FIRST_NAME, LAST_NAME, COUNTRY, POSTAL_CODE = (
    "hashedFirstName",
    "hashedLastName",
    "countryCode",
    "postalCode",
)
ADDRESS = (FIRST_NAME, LAST_NAME, COUNTRY, POSTAL_CODE)

FIELDS = (
    FieldSpec(EMAIL, "Email address", Normalizer.google_email, hashed=True, identifier=True),
    FieldSpec(PHONE, "Phone number (E.164)", Normalizer.phone_e164, hashed=True, identifier=True),
    FieldSpec(FIRST_NAME, "First name (address)", Normalizer.name, hashed=True, identifier=True),
    FieldSpec(LAST_NAME, "Last name (address)", Normalizer.name, hashed=True, identifier=True),
    FieldSpec(
        COUNTRY, "Country, ISO 3166-1 alpha-2 (address)", Normalizer.country, identifier=True
    ),
    FieldSpec(POSTAL_CODE, "Postal code (address)", Normalizer.postal_code, identifier=True),
)


class CustomerMatchSpec(DestinationSpec):
    """A Customer Match member needs an email, a phone number or a complete address."""

    def check_mapping(self, destination_fields: list[str]) -> list[tuple[int, str]]:
        problems = super().check_mapping(destination_fields)
        mapped = set(destination_fields)
        if mapped & {EMAIL, PHONE} or set(ADDRESS) <= mapped:
            return problems
        return [
            *[p for p in problems if p[0] != -1],
            (-1, f"google_ads needs {EMAIL}, {PHONE} or all of {', '.join(ADDRESS)}"),
        ]

    def prepare(self, payload: Mapping[str, Any], region: str | None) -> dict[str, Any]:
        prepared = super().prepare(payload, region)
        if not all(prepared.get(name) for name in ADDRESS):
            for name in ADDRESS:
                prepared.pop(name, None)
        if not prepared.get(EMAIL) and not prepared.get(PHONE) and FIRST_NAME not in prepared:
            raise InvalidValue(
                "no usable identifier (an address needs first and last name, country and "
                "postal code)"
            )
        return prepared


def user_identifiers(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The member's `userIdentifiers`: email, phone, and the address when it is complete."""
    identifiers: list[dict[str, Any]] = []
    if fields.get(EMAIL):
        identifiers.append({"emailAddress": fields[EMAIL]})
    if fields.get(PHONE):
        identifiers.append({"phoneNumber": fields[PHONE]})
    if all(fields.get(name) for name in ADDRESS):
        identifiers.append(
            {
                "address": {
                    "givenName": fields[FIRST_NAME],
                    "familyName": fields[LAST_NAME],
                    "regionCode": fields[COUNTRY],
                    "postalCode": fields[POSTAL_CODE],
                }
            }
        )
    return identifiers


class GoogleAdsConnector:
    type: ClassVar[str] = "google_ads"
    max_batch_size: ClassVar[int] = MAX_MEMBERS
    default_batch_size: ClassVar[int] = 5_000

    def __init__(
        self,
        config: dict[str, Any],
        options: BuildOptions,
        *,
        rate_limit: RateLimit | None = RATE_LIMIT,
    ) -> None:
        settings = GoogleAdsConfig.model_validate(config)
        self._settings = settings
        headers = {}
        if settings.quota_project_id:
            headers["x-goog-user-project"] = settings.quota_project_id
        self.client = VendorClient(
            "google_ads",
            settings.base_url,
            options,
            headers=headers,
            rate_limit=rate_limit,
            secrets=[settings.access_token, settings.client_secret, settings.refresh_token],
        )
        self._auth: FixedToken | RefreshedToken
        if settings.access_token:
            self._auth = FixedToken(settings.access_token)
        else:
            assert settings.client_id and settings.client_secret and settings.refresh_token
            self._auth = RefreshedToken(
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                refresh_token=settings.refresh_token,
                token_url=settings.token_url,
                options=options,
                on_token=self.client.add_secret,
            )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        passthrough: tuple[int, ...] = (),
    ) -> httpx.Response:
        """One API call with a current access token; a renewable token the API refuses is
        renewed and the call sent once more."""
        token = await self._auth.token()
        renews = self._auth.renews
        response = await self.client.request(
            method,
            path,
            json=json,
            headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            passthrough=(*passthrough, 401) if renews else passthrough,
        )
        if renews and response.status_code == 401:
            token = await self._auth.renew(token)
            response = await self.client.request(
                method,
                path,
                json=json,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                passthrough=passthrough,
            )
        return response

    def _account(self, account_id: str) -> dict[str, str]:
        return {"accountType": "GOOGLE_ADS", "accountId": account_id}

    def _destination(self) -> dict[str, Any]:
        destination: dict[str, Any] = {
            "operatingAccount": self._account(self._settings.operating_account_id),
            "productDestinationId": self._settings.user_list_id,
        }
        if self._settings.login_account_id:
            destination["loginAccount"] = self._account(self._settings.login_account_id)
        return destination

    def _consent(self) -> dict[str, str]:
        consent = {
            "adUserData": self._settings.ad_user_data_consent,
            "adPersonalization": self._settings.ad_personalization_consent,
        }
        return {
            key: value for key, value in consent.items() if value != "CONSENT_STATUS_UNSPECIFIED"
        }

    async def check(self) -> None:
        """Reads the user list: the token, the account access and the list id in one call."""
        s = self._settings
        headers = {}
        if s.login_account_id:
            headers["login-account"] = f"accountTypes/GOOGLE_ADS/accounts/{s.login_account_id}"
        await self._request(
            "GET",
            f"/v1/accountTypes/GOOGLE_ADS/accounts/{s.operating_account_id}"
            f"/userLists/{s.user_list_id}",
            headers=headers,
        )

    def body(self, operation: Operation, members: Sequence[list[dict[str, Any]]]) -> dict[str, Any]:
        """The request body for these members' identifiers (ingest, or remove)."""
        body: dict[str, Any] = {
            "destinations": [self._destination()],
            "audienceMembers": [{"userData": {"userIdentifiers": ids}} for ids in members],
            "encoding": "HEX",
        }
        if operation is not Operation.remove:
            if consent := self._consent():
                body["consent"] = consent
            if self._settings.accept_customer_match_terms:
                body["termsOfService"] = {"customerMatchTermsOfServiceStatus": "ACCEPTED"}
        return body

    async def send(self, batch: Batch) -> BatchResult:
        pending: list[tuple[Record, list[dict[str, Any]]]] = []
        rejected: list[tuple[str, str]] = []
        for record in batch.records:
            identifiers = user_identifiers(record.fields)
            if identifiers:
                pending.append((record, identifiers))
            else:
                rejected.append((record.key, "no email, phone number or complete address"))
        verb = "remove" if batch.operation is Operation.remove else "ingest"
        while pending:
            response = await self._request(
                "POST",
                f"/v1/audienceMembers:{verb}",
                json=self.body(batch.operation, [ids for _, ids in pending]),
                passthrough=(400,),
            )
            if response.status_code < 400:
                break
            refused = _refused_members(response, len(pending))
            if not refused:
                self.client.raise_for_status(response)  # refused whole: delivery bisects
            rejected.extend((pending[i][0].key, reason) for i, reason in sorted(refused.items()))
            pending = [item for i, item in enumerate(pending) if i not in refused]
        return BatchResult(
            accepted=tuple(record.key for record, _ in pending), rejected=tuple(rejected)
        )

    async def close(self) -> None:
        await self._auth.close()
        await self.client.close()


def _refused_members(response: httpx.Response, size: int) -> dict[int, str]:
    """{member index: reason} from a fast-fail 400's `BadRequest.fieldViolations`."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return {}
    refused: dict[int, str] = {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        if not isinstance(detail, dict):
            continue
        for violation in detail.get("fieldViolations", []) or []:
            match = _MEMBER_PATH.search(str(violation.get("field", "")))
            if match and int(match.group(1)) < size:
                reason = violation.get("reason") or "INVALID_AUDIENCE_MEMBER"
                text = violation.get("description") or "the audience member is not valid"
                refused[int(match.group(1))] = f"google_ads refused the member ({reason}): {text}"[
                    :500
                ]
    return refused


SPEC = CustomerMatchSpec(
    kind=DestinationType.google_ads,
    title="Google Ads Customer Match",
    description=(
        "Customer Match user lists through the Google Data Manager API: hashed emails, phone "
        "numbers and addresses, with consent as configured."
    ),
    config=GoogleAdsConfig,
    build=lambda config, options: GoogleAdsConnector(config, options),
    max_batch_size=GoogleAdsConnector.max_batch_size,
    default_batch_size=GoogleAdsConnector.default_batch_size,
    concurrency=2,
    fields=FIELDS,
    custom_fields=False,
    needs_identifier=True,
    rate_limit=RATE_LIMIT,
    account_fields=("quota_project_id",),
)
