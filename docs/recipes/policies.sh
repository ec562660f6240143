curl -X POST https://scaivault.scailabs.ai/v1/policies \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "sa-billing-stripe-read",
    "rules": [{"path_pattern": "environments/production/billing/stripe", "permissions": ["read"]}]
  }'

curl -X POST https://scaivault.scailabs.ai/v1/policies/pol_abc/bindings \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{"identity_type": "service_account", "identity_id": "sa:billing-prod"}'

curl -X POST https://scaivault.scailabs.ai/v1/policies/test \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "identity_id": "sa:billing-prod",
    "path": "environments/production/billing/stripe",
    "permission": "read"
  }' | jq '.allowed'
