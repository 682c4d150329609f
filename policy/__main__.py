"""sirius-demo policy pack: `pulumi preview --policy-pack policy`.

The rules live in rules.py as plain functions (resource type, props, config) -> messages;
this file only wires them into pulumi_policy. Mandatory rules fail a preview or an up;
advisory ones print a warning. Policy config (pulumi's --policy-pack-config JSON file):

    {"allowed-instance-types": {"allowedInstanceTypes": ["t3.medium", "t3.large", "t3.xlarge"]},
     "no-public-ingress-except-ui-api": {"publicPorts": [80, 443]},
     "volume-size": {"enforcementLevel": "disabled"}}
"""

from __future__ import annotations

import os
import sys

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# The CLI runs this file with runpy from the pack's directory; rules.py sits next to it, and
# the repository root above it holds engine/rules.py, whose instance-type rule the pack shares.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
_REPOSITORY = os.path.dirname(_HERE)
if _REPOSITORY not in sys.path:
    sys.path.append(_REPOSITORY)
import rules  # after the path is set

PACK_NAME = "sirius-demo-guardrails"


def _resource_validation(rule: rules.Rule):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        props = rules.plain(args.props)
        for message in rule.check(args.resource_type, props, dict(args.get_config() or {})):
            report_violation(message, None)

    validate.__name__ = f"validate_{rule.name.replace('-', '_')}"
    return validate


def _stack_validation(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [rules.StackResource(r.resource_type, r.urn, rules.plain(r.props)) for r in args.resources]
    for message, urn in rules.public_ip_has_elastic_ip(resources, dict(args.get_config() or {})):
        report_violation(message, urn)


def build_policies() -> list:
    policies: list = [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_resource_validation(rule),
            enforcement_level=EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY,
            config_schema=PolicyConfigSchema(properties={k: dict(v) for k, v in rule.config.items()})
            if rule.config else None,
        )
        for rule in rules.RESOURCE_RULES
    ]
    policies.append(
        StackValidationPolicy(
            name=rules.STACK_RULE_NAME,
            description=rules.STACK_RULE_DESCRIPTION,
            validate=_stack_validation,
            enforcement_level=EnforcementLevel.ADVISORY,
        )
    )
    return policies


if __name__ == "__main__":
    PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=build_policies())
