#!/usr/bin/env bash
# The main job on the bundled examples, with the embedded default state (.atpay/state.db):
# initialise the simulated tenants, validate, plan, preview who sees what, apply, re-plan.
set -euo pipefail
cd "$(dirname "$0")/.."

# DEMO ONLY: the example keys are encrypted to this committed identity (examples/demo-identity/).
export SOPS_AGE_KEY_FILE="${SOPS_AGE_KEY_FILE:-examples/demo-identity/age-demo.key}"
mkdir -p out

step() { if [ -t 2 ]; then printf '\n\033[1m== %s\033[0m\n' "$*" >&2; else printf '\n== %s\n' "$*" >&2; fi; }

step "atpay state init: simulated Autotask tenants from examples/fixtures (reset)"
atpay state init examples/fixtures --replace

step "atpay validate: schema, the documented rules (AT001-AT011), examples/policies"
atpay validate examples/tenants --policies examples/policies

step "atpay plan: ordered steps per tenant, saved to out/plan.json"
atpay plan examples/tenants --policies examples/policies --out out/plan.json

step "atpay report: who sees what after the apply (out/report.html, out/report.md)"
atpay report examples/tenants --format html -o out/report.html
atpay report examples/tenants --format markdown --changes-only -o out/report.md
atpay report examples/tenants --tenant contoso --audience "Billing Clerk"

step "atpay apply: the saved plan"
atpay apply out/plan.json --auto-approve

step "atpay plan again: nothing left to do (exit 0 with --detailed-exitcode)"
atpay plan examples/tenants --policies examples/policies --detailed-exitcode

step "done: open out/report.html; state in .atpay/state.db (atpay state list)"
atpay state list
