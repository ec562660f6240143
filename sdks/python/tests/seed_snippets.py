"""The Python snippets of the documentation, verbatim: the SDK's acceptance test.

Seed 000 is api-guides/batch-operations, seed 002 is api-guides/cookbook (both in
``shared/seeds/``); the REFERENCE_* snippets come from the sdks/python page
(``shared/reference/sdks__python.md``). ``test_seed_snippets.py`` runs each of them against a
real server; ``test_snippets_match_seeds`` checks this file still matches the seeds when
``shared/`` is present. Do not edit a snippet here without the seed changing.
"""

# fmt: off

# seed 000 (batch operations): "Batch read (Python tab)"
SEED_000_BATCH_READ_HTTPX = """\
paths = [
    "integrations/salesforce/oauth",
    "integrations/scaisend/api-key",
    "integrations/stripe/secret-key",
]
resp = httpx.post(
    "https://scaivault.scailabs.ai/v1/secrets/batch",
    headers={"Authorization": f"Bearer {os.environ['SCAIVAULT_TOKEN']}"},
    json={"paths": paths},
)
result = resp.json()
for path, secret in result["secrets"].items():
    print(path, secret["version"])
"""

# seed 000 (batch operations): "Startup pattern"
SEED_000_STARTUP_PATTERN_HTTPX = """\
import os, httpx

CREDENTIALS_TO_LOAD = [
    "integrations/salesforce/oauth",
    "integrations/scaisend/api-key",
    "integrations/stripe/secret-key",
    "infra/db/primary/credentials",
    "infra/redis/primary/credentials",
]

def load_all_credentials():
    resp = httpx.post(
        "https://scaivault.scailabs.ai/v1/secrets/batch",
        headers={"Authorization": f"Bearer {os.environ['SCAIVAULT_TOKEN']}"},
        json={"paths": CREDENTIALS_TO_LOAD, "options": {"fail_fast": True}},
        timeout=10.0,
    )
    resp.raise_for_status()
    return resp.json()["secrets"]

secrets = load_all_credentials()
"""

# seed 002 (cookbook): "Read one secret and use a single field"
SEED_002_READ_ONE_FIELD = """\
from scaivault_sdk import SyncScaiVaultClient
client = SyncScaiVaultClient(...)
db = client.secrets.read("environments/production/billing/database")
conn_str = db.data["url"]
"""

# seed 002 (cookbook): "Read many secrets at startup"
SEED_002_READ_MANY_AT_STARTUP = """\
batch = client.secrets.batch_read([
    "environments/production/billing/database",
    "environments/production/billing/stripe",
    "environments/production/billing/sendgrid",
])
for path, secret in batch.secrets.items():
    apply_config(path, secret)
"""

# seed 002 (cookbook): "Read with retry on transient failure"
SEED_002_READ_WITH_RETRY = """\
import time
from scaivault_sdk.errors import RateLimitError, ServiceUnavailableError

for attempt in range(5):
    try:
        secret = client.secrets.read(path)
        break
    except RateLimitError as e:
        time.sleep(e.retry_after)
    except ServiceUnavailableError:
        time.sleep(2 ** attempt)
else:
    raise RuntimeError("max retries exceeded")
"""

# seed 002 (cookbook): "Check whether a secret exists without reading it"
SEED_002_CHECK_EXISTS = """\
try:
    client.secrets.read_metadata(path)
    exists = True
except NotFoundError:
    exists = False
"""

# seed 002 (cookbook): "Idempotent write of initial value"
SEED_002_IDEMPOTENT_INITIAL_WRITE = """\
try:
    client.secrets.read_metadata(path)
    # exists; do nothing
except NotFoundError:
    client.secrets.write(path, data={"key": initial_value}, secret_type="api_key")
"""

# seed 002 (cookbook): "Update one field without overwriting others"
SEED_002_UPDATE_ONE_FIELD = """\
secret = client.secrets.read("app/config")
new_data = {**secret.data, "feature_flag_x": True}
client.secrets.write("app/config", data=new_data, secret_type=secret.secret_type)
"""

# seed 002 (cookbook): "Write with expiration"
SEED_002_WRITE_WITH_EXPIRATION = """\
client.secrets.write(
    path="test/oauth-token",
    data={"token": value},
    options={"expires_in": "1h"},
)
"""

# seed 002 (cookbook): "One-shot Postgres credential for a script"
SEED_002_DYNAMIC_ONE_SHOT_POSTGRES = """\
with client.dynamic.credentials("postgres-prod", "readonly", ttl="30m") as creds:
    run_query(creds["connection_url"])
# Lease revoked automatically on exit
"""

# seed 002 (cookbook): "Bulk-tag secrets matching a pattern"
SEED_002_BULK_TAG = """\
listing = client.secrets.list(prefix="environments/staging/", limit=200)
for item in listing.data:
    client.secrets.update_metadata(
        path=item.path,
        metadata={"tags": list(set(item.tags + ["needs-rotation"]))},
    )
"""

# sdks/python: "Authenticate"
REFERENCE_AUTHENTICATE = """\
import os
from scaivault_sdk import ScaiVaultClient

client = ScaiVaultClient(
    base_url="https://scaivault.scailabs.ai",
    token=os.environ["SCAIVAULT_TOKEN"],
)
"""

# sdks/python: "Authenticate (client credentials)"
REFERENCE_CLIENT_CREDENTIALS = """\
client = ScaiVaultClient(
    base_url="https://scaivault.scailabs.ai",
    client_id=os.environ["SCAIKEY_CLIENT_ID"],
    client_secret=os.environ["SCAIKEY_CLIENT_SECRET"],
)
"""

# sdks/python: "Async vs sync (async)"
REFERENCE_ASYNC_VS_SYNC_ASYNC = """\
import asyncio

async def main():
    async with ScaiVaultClient(base_url=..., token=...) as client:
        secret = await client.secrets.read("app/db/password")
        print(secret.data["password"])

asyncio.run(main())
"""

# sdks/python: "Async vs sync (sync)"
REFERENCE_ASYNC_VS_SYNC_SYNC = """\
from scaivault_sdk import SyncScaiVaultClient

client = SyncScaiVaultClient(base_url=..., token=...)
secret = client.secrets.read("app/db/password")
print(secret.data["password"])
"""

# sdks/python: "Secrets (recovered start, cut at '# Delete')"
REFERENCE_SECRETS_BLOCK = """\
# Read
secret = await client.secrets.read("environments/production/salesforce/oauth")
secret.version           # int
secret.data              # dict[str, Any]
secret.metadata          # SecretMetadata
secret.secret_type       # SecretType enum

# Write
result = await client.secrets.write(
    path="environments/production/salesforce/oauth",
    data={"client_id": "...", "client_secret": "..."},
    secret_type="json",
    metadata={"tags": ["salesforce"]},
    max_versions=10,
)

# Update (metadata only)
await client.secrets.update_metadata(
    path="app/db/password",
    metadata={"tags": ["critical"]},
)

"""


SEED_000 = [SEED_000_BATCH_READ_HTTPX, SEED_000_STARTUP_PATTERN_HTTPX]
SEED_002 = [
    SEED_002_READ_ONE_FIELD,
    SEED_002_READ_MANY_AT_STARTUP,
    SEED_002_READ_WITH_RETRY,
    SEED_002_CHECK_EXISTS,
    SEED_002_IDEMPOTENT_INITIAL_WRITE,
    SEED_002_UPDATE_ONE_FIELD,
    SEED_002_WRITE_WITH_EXPIRATION,
    SEED_002_DYNAMIC_ONE_SHOT_POSTGRES,
    SEED_002_BULK_TAG,
]
