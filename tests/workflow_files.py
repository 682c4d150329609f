"""The workflow files as the tests read them: shared by the rules over
.github/workflows/*.yml (test_workflow_rules.py) and the runs of their steps
(test_workflow_steps.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))

# reset.yml's steps that both files name
RESET_STEP = "Reset the demo (pulumi up, replacing the reset command)"
RESET_SUMMARY = "Job summary and the reset-failed issue"


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def jobs(path: Path):
    return load(path)["jobs"].items()


def steps(path: Path):
    for job_id, job in jobs(path):
        for step in job.get("steps", []):
            yield job_id, job, step



def step_script(workflow: str, job: str, *, step_id: str | None = None, name: str | None = None) -> str:
    for step in load(WORKFLOWS / workflow)["jobs"][job]["steps"]:
        if (step_id and step.get("id") == step_id) or (name and step.get("name") == name):
            return step["run"]
    raise LookupError(f"{workflow} {job}: no step {step_id or name}")
