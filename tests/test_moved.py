"""ci.moved: what the PR comment says moved, from `pulumi preview --json` (the deploy's old and new pins)."""

from __future__ import annotations

import json

from ci import moved, stacks

URN = "urn:pulumi:demo::sirius-demo::sirius-demo:index:Demo$command:remote:Command::sirius-deploy"
OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64
SAME = "sha256:" + "c" * 64
CREATE = "sudo python3 /opt/sirius-demo/engine.pyz deploy --repo https://github.com/SiriusScan/Sirius.git --ref main"


def state(commit: str, ui: str) -> dict:
    return {"inputs": {"create": CREATE, "triggers": ["i-0123", "main", "latest", {}, "engine",
                                                     {"commit": commit, "digests": {"sirius-ui": ui, "sirius-api": SAME}}]}}


def preview(old: dict | None, new: dict) -> dict:
    step = {"op": "update" if old else "create", "urn": URN, "newState": new}
    if old:
        step["oldState"] = old
    return {"steps": [{"op": "same", "urn": "urn:pulumi:demo::sirius-demo::pulumi:pulumi:Stack::x"}, step]}


def test_a_moved_image_and_a_new_commit_are_named_with_old_and_new():
    lines = moved.summary(preview(state("1" * 40, OLD), state("2" * 40, NEW)))
    text = "\n".join(lines)
    assert f"| sirius-ui | `{OLD[:19]}` | `{NEW[:19]}` |" in text and "sirius-api" not in text
    assert f"Commits of the ref: `{'1' * 12}..{'2' * 12}`" in text
    assert f"https://github.com/SiriusScan/Sirius/compare/{'1' * 40}...{'2' * 40}" in text


def test_nothing_moved_first_deploy_and_offline_say_so():
    assert "nothing" in moved.summary(preview(state("1" * 40, OLD), state("1" * 40, OLD)))[0]
    assert "first pinned deploy" in moved.summary(preview(None, state("1" * 40, OLD)))[0]
    assert "preflight is off" in moved.summary(preview(state("", OLD), state("", OLD)))[0]
    assert "no deploy step" in moved.summary({"steps": []})[0]


def test_the_comment_is_headed_by_what_moved(tmp_path, capsys):
    (tmp_path / "preview.txt").write_text("Previewing update (demo)\n")
    (tmp_path / "preview.json").write_text(json.dumps(preview(state("1" * 40, OLD), state("1" * 40, NEW))))
    assert stacks.main(["preview-comment", f"--output={tmp_path / 'preview.txt'}", "--outcome=success",
                        f"--preview-json={tmp_path / 'preview.json'}"]) == 0
    out = capsys.readouterr().out
    assert out.index("What moved since the last deploy") < out.index("Previewing update")
    assert stacks.main(["preview-comment", f"--output={tmp_path / 'preview.txt'}", "--outcome=success",
                        f"--preview-json={tmp_path / 'absent.json'}"]) == 0
    assert "What moved" not in capsys.readouterr().out
