#!/usr/bin/env bash
# Create or edit this workflow's comment on a pull request: ci/pr-comment.sh NUMBER FILE.
# The comment is the one written by github-actions[bot] (the GITHUB_TOKEN's user) whose body
# starts with FILE's first line (a marker such as <!-- sirius-demo:preview -->); anyone else's
# comment that quotes the marker is left alone. A failed listing fails the step: it never
# falls through to posting a second comment. Needs GH_TOKEN and GITHUB_REPOSITORY.
set -euo pipefail

number=$1
file=$2
bot=${PR_COMMENT_AUTHOR:-github-actions[bot]}
marker=$(head -n 1 "$file")

comment_id=$(gh api --paginate "repos/${GITHUB_REPOSITORY}/issues/${number}/comments" |
  jq -r --arg marker "$marker" --arg bot "$bot" \
    '.[] | select(.user.login == $bot and (.body | startswith($marker))) | .id' | head -n 1)
if [[ -n $comment_id ]]; then
  gh api --method PATCH "repos/${GITHUB_REPOSITORY}/issues/comments/${comment_id}" -F "body=@${file}" > /dev/null
else
  gh api --method POST "repos/${GITHUB_REPOSITORY}/issues/${number}/comments" -F "body=@${file}" > /dev/null
fi
