"""Policies: pure rules from a Topology to a Policy, and the policy file.

Terms (the types are in :mod:`haprotect.model.policy`):

rules
    What ``haprotect plan`` applies: a class rule for HA data and one for the
    rest (priority, cron schedule, retention, copies, repository), how to
    read replicated data, compliance presets, and exceptions per data set.
    Packaged defaults (``defaults.yaml``), overridden by a rules file.
preset
    A named retention floor for a regulation (``hipaa``, ``sox``,
    ``pci-dss``); it only ever raises retention.
policy file
    ``apiVersion: haprotect/v1``, ``kind: Policy``: YAML an administrator
    reviews and edits; validated at load with errors naming file, line and
    field. Specified in docs/policy.md.
fingerprint
    A hash of the topology's definition (not placement) kept in the policy's
    metadata, so drift can be detected later.

Modules: ``rules`` and ``rules_file`` (rules and the rules file), ``presets``,
``decide`` (one data set), ``layers`` (data sets lying on others), ``groups``
(consistency groups), ``generate`` (the whole topology), ``fingerprint``,
``fields``/``schema`` (validation; lines come from
:mod:`haprotect.yamlsource`), ``document`` (model <-> document), ``io``
(files), ``diff``, ``explain``.
"""

from __future__ import annotations

from haprotect.policy.diff import Change, ChangeKind, diff_policies
from haprotect.policy.explain import Explanation, explain
from haprotect.policy.fingerprint import topology_fingerprint
from haprotect.policy.generate import generate
from haprotect.policy.io import dump_policy, load_policy, parse_policy, policy_json
from haprotect.policy.rules import Rules
from haprotect.policy.rules_file import default_rules, defaults_text, load_rules, parse_rules

__all__ = [
    "Change",
    "ChangeKind",
    "Explanation",
    "Rules",
    "default_rules",
    "defaults_text",
    "diff_policies",
    "dump_policy",
    "explain",
    "generate",
    "load_policy",
    "load_rules",
    "parse_policy",
    "parse_rules",
    "policy_json",
    "topology_fingerprint",
]
