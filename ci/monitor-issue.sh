#!/usr/bin/env bash
# Open, comment on or close the monitor's issue: ci/monitor-issue.sh STATUS FILE, where STATUS
# is `down` or `ok` (from `python -m ci.monitor check`) and FILE the Markdown of
# `python -m ci.monitor report`.
#   down, no open issue labelled demo-down: open one, FILE as its body
#   down, one open: comment FILE on it
#   ok, one open: comment FILE on it and close it
#   ok, none open: nothing
#   updating (the proxy's "being updated" page during the nightly reset): nothing, whatever is open
# At most one issue is open: the open ones are listed before one is opened (monitor.yml's
# concurrency group keeps two runs from doing this at once); if several are open anyway
# (opened by hand), the oldest gets the comments and recovery closes them all. A failed
# listing fails the script: it never reads as "none open" and opens a second issue.
# Needs GH_TOKEN and GITHUB_REPOSITORY; STACK names the stack in a new issue's title.
# The nightly reset (reset.yml) uses the same flow for its own issue: MONITOR_LABEL,
# ISSUE_TITLE and LABEL_DESCRIPTION name it (`down` there means the reset failed).
set -euo pipefail

status=$1
file=$2
label=${MONITOR_LABEL:-demo-down}
repo=$GITHUB_REPOSITORY
title=${ISSUE_TITLE:-"The Sirius demo (stack ${STACK:-demo}) is down"}
description=${LABEL_DESCRIPTION:-"The monitor found the demo down; closed when it is back"}
if [[ $status != down && $status != ok && $status != updating ]]; then
  echo "ci/monitor-issue.sh: STATUS must be 'down', 'ok' or 'updating', got '$status'" >&2
  exit 2
fi
if [[ $status == updating ]]; then
  echo "Being updated (the nightly reset): the $label issue is left as it is."
  exit 0
fi

# The REST issue list, not `gh issue list --label` (that goes through the search index, which
# can miss an issue opened a minute ago). It lists pull requests too: those are dropped.
open=$(gh api --paginate --method GET "repos/${repo}/issues" -f state=open -f "labels=${label}" -f per_page=100 \
  --jq '.[] | select(.pull_request == null) | .number' | sort -n)

case $status in
  down)
    if [[ -n $open ]]; then
      oldest=${open%%$'\n'*}
      gh issue comment "$oldest" --repo "$repo" --body-file "$file" > /dev/null
      echo "Still down: commented on issue #$oldest."
    else
      # `issue create --label` fails on a label the repository lacks; --force makes this idempotent.
      gh label create "$label" --repo "$repo" --force --color B60205 --description "$description" > /dev/null
      url=$(gh issue create --repo "$repo" --title "$title" --label "$label" --body-file "$file")
      echo "Down: opened $url."
    fi
    ;;
  ok)
    if [[ -z $open ]]; then
      echo "Up, and no open $label issue: nothing to do."
      exit 0
    fi
    while IFS= read -r number; do
      gh issue comment "$number" --repo "$repo" --body-file "$file" > /dev/null
      gh issue close "$number" --repo "$repo" --reason completed > /dev/null
      echo "Up again: closed issue #$number."
    done <<< "$open"
    ;;
esac
