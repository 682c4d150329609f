#!/usr/bin/env bash
# Destroy and remove a branch or pull request stack: ci/destroy-stack.sh STACK MESSAGE.
# The stack is looked up the way `--stack STACK` resolves it (the current organisation on
# Pulumi Cloud), never by a name in some other organisation's listing. A stack that does
# not exist is nothing to do. Writes destroyed=true|false to $GITHUB_OUTPUT.
set -euo pipefail

stack=$1
message=$2

if ! pulumi stack select "$stack" --non-interactive 2> select.err; then
  if grep -qi "no stack named" select.err; then
    echo "There is no stack $stack: nothing to destroy."
    echo "destroyed=false" >> "$GITHUB_OUTPUT"
    exit 0
  fi
  cat select.err >&2
  exit 1
fi
pulumi install
cp Pulumi.branch.yaml "Pulumi.${stack##*/}.yaml"
pulumi destroy --stack "$stack" --yes --skip-preview --non-interactive --message "$message"
pulumi stack rm "$stack" --yes --non-interactive
echo "destroyed=true" >> "$GITHUB_OUTPUT"
