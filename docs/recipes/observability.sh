# The cookbook's health and observability recipes, verbatim (crates/cli/tests/api/health.rs runs them).

curl -fsS https://scaivault.scailabs.ai/v1/health

curl -H "Authorization: Bearer $TOKEN" \
     https://scaivault.scailabs.ai/v1/health/detailed | jq

curl -H "Authorization: Bearer $TOKEN" \
     https://scaivault.scailabs.ai/v1/auth/whoami

curl -i -H "Authorization: Bearer $TOKEN" \
     https://scaivault.scailabs.ai/v1/secrets?limit=1 \
  | grep -i ratelimit
# X-RateLimit-Limit: 1000
# X-RateLimit-Remaining: 982
# X-RateLimit-Reset: 1714478460
