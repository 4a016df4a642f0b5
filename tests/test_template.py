"""deploy/template.yaml, checked offline: cfn-lint, least privilege, the runtime contract's
environment, table, queue, body bucket, routes and alarms, the packaging, agreement with the code
that runs under it (`adapters.runtime.config` accepts every parameter value the stack admits; the
table is the one `sendguard provision` creates), and the operations guide's coverage of every alarm.

Each checker returns what is wrong (an empty list: nothing). Each runs once on the real template and
once more on a copy broken on purpose, to show that it can fail.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str
from cfnlint.helpers import REGIONS
from packaging.requirements import Requirement

from adapters.ops.provision import TABLE_DEFINITION
from adapters.runtime import log_events
from adapters.runtime.codec import EXPIRES_AT
from adapters.runtime.config import Config, ConfigError
from adapters.runtime.metrics import DIMENSIONS as EMF_DIMENSIONS
from bench.coldstart import function_package
from statemodel.attention import MAX_SHARDS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
GUIDE = ROOT / "docs" / "operations.md"
PYPROJECT = ROOT / "pyproject.toml"

Template = dict[str, Any]
Check = Callable[[Template], list[str]]

# ---- the runtime contract, as the template must serve it -----------------------------------------

SUBMIT, RECONCILER = "SubmitFunction", "ReconcilerFunction"
WORKER = "ReconcilerWorkerFunction"  # a fanned-out pass's workers (adapters.runtime.fanout)
FANS_OUT = "FansOut"  # the condition the workers and their grant are made under
HANDLERS = {
    SUBMIT: "adapters.aws_lambda.submit",
    RECONCILER: "adapters.aws_lambda.reconcile",
    WORKER: "adapters.aws_lambda.reconcile",
}
LOG_GROUPS = {SUBMIT: "SubmitLogGroup", RECONCILER: "ReconcilerLogGroup", WORKER: "ReconcilerLogGroup"}
# The ready consumer (ConsumerMode): made only when it is on; `ready_consumer_problems` below.
CONSUMER, CONSUMER_TABLE, CONSUMER_MODE = "ConsumerFunction", "ConsumerTable", "ConsumerMode"
CONSUMER_HANDLER = "adapters.aws_lambda_consumer.consume"

# The bucket of the bodies too large for a DynamoDB item, and the parameter of their key prefix.
BUCKET, BODY_PREFIX = "BodyBucket", "BodyPrefix"
# The one wildcard a grant may have: the bucket's objects under the prefix,
# !Sub "${BodyBucket.Arn}/${BodyPrefix}*", named "BodyBucket/objects" below.
BODY_OBJECTS = f"${{{BUCKET}.Arn}}/${{{BODY_PREFIX}}}*"
OBJECT_ACTIONS = {"s3:GetObject", "s3:PutObject"}

# (action, resource) for every grant of each function's role. Resources are named symbolically:
# "Table" is !GetAtt Table.Arn, "Table/index/attention" is !Sub "${Table.Arn}/index/attention",
# "BodyBucket/objects" is BODY_OBJECTS.
GRANTS: dict[str, set[tuple[str, str]]] = {
    SUBMIT: {
        ("dynamodb:UpdateItem", "Table"),
        ("dynamodb:GetItem", "Table"),
        ("dynamodb:PutItem", "Table"),
        ("dynamodb:DescribeTable", "Table"),  # after a refused key: which layout setting is wrong
        ("s3:PutObject", f"{BUCKET}/objects"),
        ("s3:GetObject", f"{BUCKET}/objects"),
        ("sqs:SendMessage", "Queue"),
        ("logs:CreateLogStream", "SubmitLogGroup"),
        ("logs:PutLogEvents", "SubmitLogGroup"),
    },
    RECONCILER: {
        ("dynamodb:Query", "Table/index/attention"),
        ("dynamodb:UpdateItem", "Table"),
        ("dynamodb:BatchGetItem", "Table"),
        ("dynamodb:DescribeTable", "Table"),  # the layout checked at a container's first pass
        ("s3:GetObject", f"{BUCKET}/objects"),
        ("sqs:SendMessage", "Queue"),
        ("logs:CreateLogStream", "ReconcilerLogGroup"),
        ("logs:PutLogEvents", "ReconcilerLogGroup"),
    },
    # The inbox's read and writes (the effect's Update too, inside its transaction); what the event
    # source mapping calls with the function's role; the stack's key when the queue is encrypted with it.
    CONSUMER: {
        ("dynamodb:GetItem", CONSUMER_TABLE),
        ("dynamodb:UpdateItem", CONSUMER_TABLE),
        ("sqs:ReceiveMessage", "Queue"),
        ("sqs:DeleteMessage", "Queue"),
        ("sqs:GetQueueAttributes", "Queue"),
        ("kms:Decrypt", "DataKey"),
        ("logs:CreateLogStream", "ConsumerLogGroup"),
        ("logs:PutLogEvents", "ConsumerLogGroup"),
    },
}
# The workers drain as a pass does; the scheduled function may also invoke them, and nothing else.
FAN_OUT = ("lambda:InvokeFunction", WORKER)
GRANTS[WORKER] = set(GRANTS[RECONCILER])
GRANTS[RECONCILER] = GRANTS[RECONCILER] | {FAN_OUT}
FORBIDDEN_EVERYWHERE = {
    "dynamodb:DeleteItem",
    "dynamodb:Scan",
    "sqs:DeleteMessage",
    "sqs:PurgeQueue",
    "s3:DeleteObject",
    "s3:ListBucket",
}
FORBIDDEN = {
    SUBMIT: FORBIDDEN_EVERYWHERE | {"dynamodb:Query", "dynamodb:BatchGetItem"},
    # It reads by key with BatchGetItem alone, and writes nothing but its records' updates.
    RECONCILER: FORBIDDEN_EVERYWHERE | {"dynamodb:GetItem", "dynamodb:PutItem", "s3:PutObject"},
    # It consumes (deletes what it processed) and never sends, nor reads the bodies.
    CONSUMER: (FORBIDDEN_EVERYWHERE - {"sqs:DeleteMessage"})
    | {"sqs:SendMessage", "dynamodb:PutItem", "dynamodb:Query", "s3:GetObject", "s3:PutObject"},
}
FORBIDDEN[WORKER] = FORBIDDEN[RECONCILER] | {"lambda:InvokeFunction"}  # a worker never fans out
FORBIDDEN[SUBMIT] |= {"lambda:InvokeFunction"}

# Each variable's value: a resource reference, or a parameter whose default is the contract's.
ENVIRONMENT: dict[str, Any] = {
    "SENDGUARD_TABLE": {"Ref": "Table"},
    "SENDGUARD_QUEUE_URL": {"Ref": "Queue"},
    "SENDGUARD_MAX_ATTEMPTS": 10,
    "SENDGUARD_REDRIVE_AFTER_SECONDS": 60,
    "SENDGUARD_LEASE_MARGIN_SECONDS": 30,
    "SENDGUARD_AWS_MAX_ATTEMPTS": 3,
    "SENDGUARD_LOG_LEVEL": "INFO",
    "SENDGUARD_METRICS_NAMESPACE": {"Fn::Sub": "sendguard/${AWS::StackName}"},
    "SENDGUARD_BODY_BUCKET": {"Ref": BUCKET},
    "SENDGUARD_BODY_PREFIX": "sendguard/bodies/",
    "SENDGUARD_RETENTION_DAYS": 0,  # never, by default: the records are the audit trail
}
MAX_ATTEMPTS_LIMIT = 20

# The log lines operators and alarms rely on, and their fields.
# What each log line carries: owned by adapters.runtime.log_events, the module the logs write through.
LOG_EVENTS = {
    name: event.fields | log_events.CONTEXT_FIELDS | log_events.LINE_FIELDS
    for name, event in log_events.EVENTS.items()
}

# Which log group each line is written to: API answers by the submit function, passes by the
# reconciler; the others by whichever function makes the transition.
LOGGED_BY = {
    "answer": {"SubmitLogGroup"},
    "reconcile_pass": {"ReconcilerLogGroup"},
}
BOTH_LOG_GROUPS = {"SubmitLogGroup", "ReconcilerLogGroup"}

# Data at rest: RetentionDays (0, never, by default) and KeyAlias (empty, AWS's keys, by default).
RETENTION = "RetentionDays"
WITH_KEY = {"KeyAlias": "sendguard-prod", CONSUMER_MODE: "transactional"}
DATA_KEY_ARN = {"Fn::GetAtt": ["DataKey", "Arn"]}
# What each use of the key may do: the functions through S3 and SQS, DynamoDB and SQS for the
# account's principals that IAM allows, CloudWatch Logs for the two log groups.
USE_ACTIONS = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"}
USE_ACTIONS |= {"kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:*", "kms:ReEncrypt*", "kms:GenerateDataKey*"}
THROUGH = {"s3", "sqs", "dynamodb"}

ROUTES = {("POST", "/messages"), ("GET", "/messages/{messageId}")}
API_GATEWAY_INTEGRATION_LIMIT_SECONDS = 30

ATTENTION_INDEX = {
    "IndexName": "attention",
    "KeySchema": [
        {"AttributeName": "sg_attention", "KeyType": "HASH"},
        {"AttributeName": "sg_attention_at", "KeyType": "RANGE"},
    ],
    # Keys only: each index write is one write unit whatever the body's size; the reconciler reads
    # the records themselves by key (BatchGetItem, strongly consistent).
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


# ---- reading the template ------------------------------------------------------------------------


def load(text: str) -> Template:
    """The template as plain data (intrinsic functions as their long forms), safe to copy."""
    template, errors = decode_str(text)
    assert not errors and template is not None, [str(e) for e in errors]
    plain: Template = json.loads(json.dumps(template))
    return plain


@cache
def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


@cache
def loaded() -> Template:
    return load(template_text())


@pytest.fixture
def template() -> Template:
    """A fresh copy for each test, so a test that breaks it breaks only its own."""
    return copy.deepcopy(loaded())


def resources(t: Template, kind: str | None = None) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in t.get("Resources", {}).items() if kind is None or r.get("Type") == kind}


def props(t: Template, name: str) -> dict[str, Any]:
    result: dict[str, Any] = t["Resources"][name].get("Properties", {})
    return result


def merged(base: Any, override: Any) -> Any:
    """SAM's Globals rule for maps: keys merge, the resource's own value wins."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return override


def function_props(t: Template, name: str) -> dict[str, Any]:
    """A function's properties with the template's Globals applied."""
    result: dict[str, Any] = merged(t.get("Globals", {}).get("Function", {}), props(t, name))
    return result


def functions(t: Template) -> dict[str, dict[str, Any]]:
    return {**resources(t, "AWS::Serverless::Function"), **resources(t, "AWS::Lambda::Function")}


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement anywhere in the template (roles, policies, resource policies)."""
    if isinstance(node, dict):
        if "Statement" in node:
            for s in listed(node["Statement"]):
                if isinstance(s, dict) and list(s) == ["Fn::If"]:  # a statement made on a condition
                    yield from (b for b in s["Fn::If"][1:] if isinstance(b, dict) and b != NO_VALUE)
                elif isinstance(s, dict):
                    yield s
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value)


def strings(node: Any) -> Iterator[str]:
    """Every string inside an expression, intrinsic functions included (a !Sub's text too)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def resource_name(expr: Any) -> str:
    """A policy resource as a symbolic name: this stack's resource it points at, or its repr."""
    if isinstance(expr, dict) and list(expr) == ["Fn::GetAtt"]:
        target, attribute = expr["Fn::GetAtt"]
        if attribute == "Arn":
            return str(target)
    if isinstance(expr, dict) and list(expr) == ["Fn::Sub"] and isinstance(expr["Fn::Sub"], str):
        if expr["Fn::Sub"] == BODY_OBJECTS:
            return f"{BUCKET}/objects"
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}(/[\w/]+)", expr["Fn::Sub"])
        if match:
            return match[1] + match[2]
    return repr(expr)


def ref_name(expr: Any) -> str | None:
    if isinstance(expr, dict) and list(expr) == ["Ref"]:
        return str(expr["Ref"])
    return None


def present(values: list[Any]) -> list[Any]:
    """A list's entries as they are when the template's conditions hold: an entry `!If [C, X,
    !Ref AWS::NoValue]` (there only under C, as a fan-out's role) is X."""
    out = []
    for value in values:
        if isinstance(value, dict) and list(value) == ["Fn::If"]:
            _, then, otherwise = value["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}, value
            value = then
        out.append(value)
    return out


def role_of(t: Template, function: str) -> str | None:
    role = props(t, function).get("Role")
    if isinstance(role, dict) and list(role) == ["Fn::GetAtt"] and role["Fn::GetAtt"][1] == "Arn":
        return str(role["Fn::GetAtt"][0])
    return None


def role_policies(t: Template, role: str) -> list[dict[str, Any]]:
    """The role's inline policies and every AWS::IAM::Policy attached to it."""
    documents = [p["PolicyDocument"] for p in props(t, role).get("Policies", [])]
    for policy in resources(t, "AWS::IAM::Policy").values():
        if {"Ref": role} in present(policy.get("Properties", {}).get("Roles", [])):
            documents.append(policy["Properties"]["PolicyDocument"])
    return documents


def grants(t: Template, role: str) -> set[tuple[str, str]]:
    return {
        (action, resource_name(resource))
        for document in role_policies(t, role)
        for statement in statements(document)
        if statement.get("Effect") == "Allow"
        for action in listed(statement.get("Action", []))
        for resource in listed(statement.get("Resource", []))
    }


def parameter_default(t: Template, expr: Any) -> Any:
    if isinstance(expr, dict) and list(expr) == ["Ref"] and expr["Ref"] in t.get("Parameters", {}):
        return t["Parameters"][expr["Ref"]].get("Default")
    return expr


# ---- the checkers --------------------------------------------------------------------------------


def lint_problems(text: str, regions: list[str]) -> list[str]:
    """cfn-lint with every rule, informational ones included."""
    matches = lint(text, config=ManualArgs(include_checks=["I"], regions=regions))
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches]


def wildcard_problems(t: Template) -> list[str]:
    """No `*` in any Action or Resource of any statement that allows, and no NotAction / NotResource.

    The logs grants name `!GetAtt LogGroup.Arn`, which AWS renders as the group's ARN followed by
    `:*` (its log streams, which Lambda names at run time): the narrowest grant for writing logs.
    `privilege_problems` pins each function's logs grants to its own log group.

    One `*` is allowed: the body objects' BODY_OBJECTS, for the object actions, since object keys are
    made at run time ({prefix}{message_id}/{nonce}); it is as narrow as the prefix, so the prefix
    parameter must admit neither "" (the whole bucket) nor a wildcard. A Deny's wildcards (the bucket
    and queue policies' TLS rules) take away, never grant. A key policy's Resource "*" is the key
    itself: `key_problems` pins the key policy statement by statement."""
    problems = []
    keys = set(resources(t, "AWS::KMS::Key"))
    others = {name: r for name, r in resources(t).items() if name not in keys}
    for statement in statements(others):
        sid = statement.get("Sid", "?")
        for key in ("NotAction", "NotResource"):
            if key in statement:
                problems.append(f"statement {sid}: {key} grants everything not listed")
        if statement.get("Effect") == "Deny":
            continue
        actions = listed(statement.get("Action", []))
        for action in actions:
            if not isinstance(action, str) or "*" in action:
                problems.append(f"statement {sid}: wildcard or computed action {action!r}")
        for resource in listed(statement.get("Resource", [])):
            if resource_name(resource) == f"{BUCKET}/objects" and set(actions) <= OBJECT_ACTIONS:
                continue
            if any("*" in s for s in strings(resource)):
                problems.append(f"statement {sid}: wildcard resource {resource!r}")
    prefix = t.get("Parameters", {}).get(BODY_PREFIX)
    if prefix is not None:
        pattern = prefix.get("AllowedPattern")
        if not isinstance(pattern, str):
            problems.append(f"{BODY_PREFIX}: no AllowedPattern, so its grants may cover any object")
        else:
            for value in ("", "*", "bodies/*", "?/", "bodies/?/"):
                if re.fullmatch(pattern, value):
                    problems.append(f"{BODY_PREFIX}: admits {value!r}, widening its grants")
            default = prefix.get("Default")
            if not isinstance(default, str) or not re.fullmatch(pattern, default):
                problems.append(f"{BODY_PREFIX}: its default {default!r} breaks its own pattern")
    return problems


def privilege_problems(t: Template) -> list[str]:
    """Each function has its own role granting exactly the contract's actions on this stack's
    resources; nothing else in the template grants IAM permissions."""
    problems = []
    roles = {}
    for function in functions(t):
        role = role_of(t, function)
        if role is None or role not in resources(t, "AWS::IAM::Role"):
            problems.append(f"{function}: no explicit role of its own (SAM would attach managed policies)")
            continue
        roles[function] = role
        if "Policies" in props(t, function):
            problems.append(f"{function}: SAM Policies besides its role")
        role_props = props(t, role)
        for key in ("ManagedPolicyArns", "PermissionsBoundary"):
            if key in role_props:
                problems.append(f"{role}: {key} adds permissions the tests cannot see")
        trust = {
            (s.get("Effect"), json.dumps(s.get("Principal"), sort_keys=True), json.dumps(s.get("Action")))
            for s in statements(role_props.get("AssumeRolePolicyDocument", {}))
        }
        lambda_only = ("Allow", json.dumps({"Service": "lambda.amazonaws.com"}), json.dumps("sts:AssumeRole"))
        if trust != {lambda_only}:
            problems.append(f"{role}: trust policy is not Lambda's alone: {sorted(trust)}")
        granted = grants(t, role)
        expected = GRANTS.get(function)
        if expected is None:
            problems.append(f"{function}: not a function of the contract")
            continue
        for action, resource in sorted(granted - expected):
            problems.append(f"{function}: grants {action} on {resource} beyond the contract")
        for action, resource in sorted(expected - granted):
            problems.append(f"{function}: lacks {action} on {resource}")
        for action in sorted({a for a, _ in granted} & FORBIDDEN[function]):
            problems.append(f"{function}: can {action}")
    if set(roles) != set(GRANTS):
        problems.append(f"functions with roles: {sorted(roles)}, expected {sorted(GRANTS)}")
    if len(set(roles.values())) != len(roles):
        problems.append("two functions share a role")
    policies = resources(t, "AWS::IAM::Policy")
    for name, policy in policies.items():
        attached = {ref_name(r) for r in present(policy.get("Properties", {}).get("Roles", []))}
        if set(policy.get("Properties", {})) & {"Users", "Groups"} or not attached <= set(roles.values()):
            problems.append(
                f"{name}: attached to {sorted(map(str, attached))}, not only the functions' roles"
            )
    for function, role in roles.items():
        own = {
            n
            for n, p in policies.items()
            if {"Ref": role} in present(p.get("Properties", {}).get("Roles", []))
        }
        waits = set(listed(t["Resources"][function].get("DependsOn", [])))
        # A policy that exists only under a condition the function does not share cannot be waited
        # for (cfn-lint E3005): the fan-out's, whose first invokes then fail and are drained by the pass.
        own -= {n for n in own if policies[n].get("Condition") != t["Resources"][function].get("Condition")}
        if not own <= waits:
            problems.append(f"{function}: may run before its grants ({sorted(own - waits)}) are attached")
    other_iam = {
        name
        for name, r in resources(t).items()
        if r["Type"].startswith("AWS::IAM::") and name not in roles.values() and name not in policies
    }
    if other_iam:
        problems.append(f"IAM resources beyond the functions' roles and policies: {sorted(other_iam)}")
    return problems


def environment_problems(t: Template) -> list[str]:
    problems = []
    for function in HANDLERS:
        variables = function_props(t, function).get("Environment", {}).get("Variables", {})
        for name, expected in ENVIRONMENT.items():
            if name not in variables:
                problems.append(f"{function}: {name} is not set")
                continue
            value = parameter_default(t, variables[name])
            if str(value) != str(expected):
                problems.append(f"{function}: {name} is {value!r}, the contract says {expected!r}")
        max_attempts = variables.get("SENDGUARD_MAX_ATTEMPTS")
        if isinstance(max_attempts, dict) and "Ref" in max_attempts:
            limit = t.get("Parameters", {}).get(max_attempts["Ref"], {}).get("MaxValue")
            if limit is None or int(limit) > MAX_ATTEMPTS_LIMIT:
                problems.append(f"{function}: SENDGUARD_MAX_ATTEMPTS may exceed {MAX_ATTEMPTS_LIMIT}")
    return problems


def runtime_problems(t: Template) -> list[str]:
    """The template agrees with the code that runs under it: every value a parameter admits is one
    the functions' configuration accepts (so a deployment never starts functions that refuse their
    environment), and the table is the one `sendguard provision` creates for local runs."""
    problems = []
    variables = {
        name: present([value])[0]  # a variable set under a condition: as it is when that holds
        for function in (SUBMIT, RECONCILER)
        for name, value in function_props(t, function).get("Environment", {}).get("Variables", {}).items()
    }
    base = {name: _rendered(t, parameter_default(t, value)) for name, value in variables.items()}
    for name, value in variables.items():
        parameter = t.get("Parameters", {}).get(ref_name(value) or "")
        if parameter is None:
            continue
        if parameter.get("Type") == "Number" and "AllowedValues" not in parameter:
            if "MinValue" not in parameter or "MaxValue" not in parameter:
                problems.append(f"{name}: parameter {ref_name(value)} has no MinValue or MaxValue")
                continue
            admitted = [parameter["MinValue"], parameter["MaxValue"]]
        else:
            admitted = parameter.get("AllowedValues", [parameter.get("Default")])
        for candidate in admitted:
            try:
                Config.from_env({**base, name: str(candidate)})
            except ConfigError as exc:
                problems.append(f"{name}: the stack admits {candidate!r}, the functions refuse it: {exc}")
    table = props(t, "Table") if "Table" in resources(t) else {}
    for key, expected in TABLE_DEFINITION.items():
        if table.get(key) != expected:
            problems.append(f"Table {key} differs from `sendguard provision`'s: {table.get(key)!r}")
    return problems


# What a !Ref to each kind of resource renders as once deployed: a sample of its physical id.
SAMPLE_REFS = {
    "AWS::DynamoDB::Table": "sendguard-prod-Table-1A2B3C4D5E6F",
    "AWS::SQS::Queue": "https://sqs.eu-west-1.amazonaws.com/123456789012/sendguard-prod-Queue-1A2B3C4D5E6F",
    "AWS::S3::Bucket": "sendguard-prod-bodybucket-1a2b3c4d5e6f",
    "AWS::Serverless::Function": "sendguard-prod-ReconcilerWorkerFunction-1A2B3C4D5E6F",
}


def _rendered(t: Template, value: Any) -> str:
    """A variable's value as a deployed function sees it (a !Sub with a sample stack name, a !Ref to
    a resource as a sample of its physical id)."""
    if isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"]).replace("${AWS::StackName}", "sendguard-prod")
    kind = resources(t).get(ref_name(value) or "", {}).get("Type")
    if kind in SAMPLE_REFS:
        return SAMPLE_REFS[kind]
    return str(value)


def table_problems(t: Template) -> list[str]:
    tables = resources(t, "AWS::DynamoDB::Table")
    if set(tables) - {CONSUMER_TABLE} != {"Table"}:
        return [f"expected the table named Table (and {CONSUMER_TABLE}), found {sorted(tables)}"]
    p = props(t, "Table")
    problems = []
    if p.get("BillingMode") != "PAY_PER_REQUEST":
        problems.append(f"BillingMode is {p.get('BillingMode')!r}, not PAY_PER_REQUEST (on-demand)")
    if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        problems.append("point-in-time recovery is off")
    if p.get("DeletionProtectionEnabled") is not True:
        problems.append("deletion protection is off")
    if tables["Table"].get("DeletionPolicy") != "Retain":
        problems.append("DeletionPolicy is not Retain: deleting the stack would delete the records")
    if p.get("KeySchema") != [{"AttributeName": "message_id", "KeyType": "HASH"}]:
        problems.append(f"key schema {p.get('KeySchema')!r}: the contract is message_id (S), no sort key")
    if p.get("GlobalSecondaryIndexes") != [ATTENTION_INDEX]:
        problems.append(f"indexes {p.get('GlobalSecondaryIndexes')!r}: the contract is `attention` alone")
    if "LocalSecondaryIndexes" in p:
        problems.append("local secondary indexes: the contract has none")
    if deployed_props(t, "Table", {}).get("TimeToLiveSpecification", {}).get("Enabled"):
        problems.append("TTL is on by default: the records are the audit trail, kept unless told")
    ttl = deployed_props(t, "Table", {RETENTION: 30}).get("TimeToLiveSpecification")
    if ttl != {"AttributeName": EXPIRES_AT, "Enabled": True}:
        problems.append(
            f"with {RETENTION} set, the TTL is {ttl!r}, not on {EXPIRES_AT} (what the code writes)"
        )
    if "SSESpecification" in deployed_props(t, "Table", {}):
        problems.append("Table: not DynamoDB's default encryption (an AWS-owned key) without KeyAlias")
    if deployed_props(t, "Table", WITH_KEY).get("SSESpecification") != {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": DATA_KEY_ARN,
    }:
        problems.append("Table: not encrypted with the stack's key when KeyAlias is set")
    attributes = {(a["AttributeName"], a["AttributeType"]) for a in p.get("AttributeDefinitions", [])}
    if attributes != {("message_id", "S"), ("sg_attention", "S"), ("sg_attention_at", "N")}:
        problems.append(f"attribute definitions {sorted(attributes)}")
    return problems


def queue_problems(t: Template) -> list[str]:
    """The queue and its dead-letter queue: encrypted (SQS-managed keys, or the stack's key with
    KeyAlias), TLS only, and a dead-letter queue that keeps messages longer than the queue and
    takes them from the queue alone."""
    queues = resources(t, "AWS::SQS::Queue")
    if set(queues) != {"Queue", "DeadLetterQueue"}:
        return [f"expected Queue and DeadLetterQueue, found {sorted(queues)}"]
    problems = []
    for name in queues:
        default, with_key = deployed_props(t, name, {}), deployed_props(t, name, WITH_KEY)
        if default.get("SqsManagedSseEnabled") is not True or "KmsMasterKeyId" in default:
            problems.append(f"{name}: not SQS-managed server-side encryption without KeyAlias")
        if with_key.get("KmsMasterKeyId") != DATA_KEY_ARN or "SqsManagedSseEnabled" in with_key:
            problems.append(f"{name}: not encrypted with the stack's key when KeyAlias is set")
    queue, dead = props(t, "Queue"), props(t, "DeadLetterQueue")
    redrive = queue.get("RedrivePolicy", {})
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}:
        problems.append("Queue: no redrive policy to DeadLetterQueue")
    if "maxReceiveCount" not in redrive:
        problems.append("Queue: the redrive policy has no maxReceiveCount")
    if "RedrivePolicy" in dead:
        problems.append("DeadLetterQueue: a dead-letter queue of its own")
    # A moved message keeps its enqueue time: the dead-letter queue must outlast the queue's longest.
    retention = t.get("Parameters", {}).get(ref_name(queue.get("MessageRetentionPeriod")) or "", {})
    longest = retention.get("MaxValue", queue.get("MessageRetentionPeriod"))
    if longest is None or int(dead.get("MessageRetentionPeriod", 345_600)) <= int(longest):
        problems.append(
            f"DeadLetterQueue keeps messages {dead.get('MessageRetentionPeriod')} s, "
            f"not longer than Queue's {longest}"
        )
    name = queue.get("QueueName")
    source = {
        "Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{_sub_text(name)}"
    }
    if name is None or dead.get("RedriveAllowPolicy") != {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [source],
    }:
        problems.append(
            f"DeadLetterQueue: redrive allowed from {dead.get('RedriveAllowPolicy')!r}, not Queue alone"
        )
    policies = [p_["Properties"] for p_ in resources(t, "AWS::SQS::QueuePolicy").values()]
    for q in sorted(queues):
        covering = [p_ for p_ in policies if {"Ref": q} in p_.get("Queues", [])]
        if not any(
            _denies_plain_http(s_, "sqs:*", [{"Fn::GetAtt": [q, "Arn"]}])
            for p_ in covering
            for s_ in statements(p_.get("PolicyDocument", {}))
        ):
            problems.append(f"{q}: no queue policy denies every request without TLS (aws:SecureTransport)")
    for p_ in policies:
        for s_ in statements(p_.get("PolicyDocument", {})):
            if s_.get("Effect") != "Deny":
                problems.append(f"a queue policy allows {s_.get('Action')!r}: grants belong in the roles")
    return problems


def _sub_text(name: Any) -> str:
    """A !Sub's text, or a plain string's."""
    return str(name["Fn::Sub"]) if isinstance(name, dict) and "Fn::Sub" in name else str(name)


def condition_holds(t: Template, expr: Any, parameters: dict[str, Any]) -> bool:
    """A condition's value when the parameters are these (the others at their defaults)."""
    if isinstance(expr, dict) and list(expr) == ["Condition"]:
        return condition_holds(t, t.get("Conditions", {})[expr["Condition"]], parameters)
    if isinstance(expr, dict) and len(expr) == 1:
        function, args = next(iter(expr.items()))
        if function == "Fn::Not":
            return not condition_holds(t, args[0], parameters)
        if function == "Fn::And":
            return all(condition_holds(t, a, parameters) for a in args)
        if function == "Fn::Or":
            return any(condition_holds(t, a, parameters) for a in args)
        if function == "Fn::Equals":
            values = {str(_value(t, a, parameters)) for a in args}
            return len(values) == 1
    raise AssertionError(f"not a condition: {expr!r}")


def _value(t: Template, expr: Any, parameters: dict[str, Any]) -> Any:
    name = ref_name(expr)
    if name is not None and name in t.get("Parameters", {}):
        return parameters.get(name, t["Parameters"][name].get("Default"))
    return expr


NO_VALUE = {"Ref": "AWS::NoValue"}


def deployed(t: Template, node: Any, parameters: dict[str, Any]) -> Any:
    """A part of the template as deployed with these parameters (the others at their defaults): every
    Fn::If resolved, AWS::NoValue dropped."""
    if isinstance(node, dict) and list(node) == ["Fn::If"]:
        condition, then, otherwise = node["Fn::If"]
        held = condition_holds(t, {"Condition": condition}, parameters)
        return deployed(t, then if held else otherwise, parameters)
    if isinstance(node, dict):
        return {k: r for k, v in node.items() if (r := deployed(t, v, parameters)) != NO_VALUE}
    if isinstance(node, list):
        return [r for v in node if (r := deployed(t, v, parameters)) != NO_VALUE]
    return node


def deployed_props(t: Template, name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """A resource's properties as deployed with these parameters ({} for a resource whose Condition
    does not hold, or none)."""
    resource = t["Resources"].get(name)
    if resource is None:
        return {}
    condition = resource.get("Condition")
    if condition is not None and not condition_holds(t, {"Condition": condition}, parameters):
        return {}
    found: dict[str, Any] = deployed(t, resource.get("Properties", {}), parameters)
    return found


def lifecycle_rules(t: Template, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules as deployed with these parameters."""
    found: list[dict[str, Any]] = (
        deployed_props(t, BUCKET, parameters).get("LifecycleConfiguration", {}).get("Rules", [])
    )
    return found


def bucket_problems(t: Template) -> list[str]:
    """The bodies' bucket: private, TLS only, encrypted, retained, and its lifecycle (incomplete
    uploads aborted, bodies to STANDARD_IA after 30 days, expired only when RetentionDays > 0, as
    their records are)."""
    buckets = resources(t, "AWS::S3::Bucket")
    if list(buckets) != [BUCKET]:
        return [f"expected one bucket named {BUCKET}, found {sorted(buckets)}"]
    problems = []
    bucket, p = buckets[BUCKET], props(t, BUCKET)
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        if bucket.get(policy) != "Retain":
            problems.append(f"{BUCKET}: {policy} is not Retain: accepted messages' bodies would go")
    block = p.get("PublicAccessBlockConfiguration", {})
    for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        if block.get(flag) is not True:
            problems.append(f"{BUCKET}: public access block {flag} is not true")
    if p.get("OwnershipControls", {}).get("Rules") != [{"ObjectOwnership": "BucketOwnerEnforced"}]:
        problems.append(f"{BUCKET}: ACLs are not disabled (ObjectOwnership BucketOwnerEnforced)")
    encryption = deployed_props(t, BUCKET, {}).get("BucketEncryption", {})
    if encryption != {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }:
        problems.append(f"{BUCKET}: default encryption {encryption}, not SSE-S3 without KeyAlias")
    with_key = deployed_props(t, BUCKET, WITH_KEY).get("BucketEncryption", {})
    expected = {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": DATA_KEY_ARN},
        "BucketKeyEnabled": True,
    }
    if with_key != {"ServerSideEncryptionConfiguration": [expected]}:
        problems.append(
            f"{BUCKET}: with KeyAlias, {with_key}, not SSE-KMS with the stack's key and a bucket key"
        )

    prefix = {"Ref": BODY_PREFIX}
    never, expires = lifecycle_rules(t, {}), lifecycle_rules(t, {RETENTION: 400})
    enabled = [r for r in never if r.get("Status") == "Enabled"]
    if not any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in enabled):
        problems.append(f"{BUCKET}: incomplete multipart uploads are not aborted after a day")
    transitions = {
        (json.dumps(r.get("Prefix")), t_.get("StorageClass"), str(t_.get("TransitionInDays")))
        for r in enabled
        for t_ in r.get("Transitions", [])
    }
    if (json.dumps(prefix), "STANDARD_IA", "30") not in transitions:
        problems.append(f"{BUCKET}: bodies are not moved to STANDARD_IA after 30 days")
    expirations = ("ExpirationInDays", "ExpirationDate")
    if any(key in r for r in never for key in expirations):
        problems.append(f"{BUCKET}: bodies expire at the default {RETENTION} (0: never)")
    if not any(
        r.get("Status") == "Enabled"
        and r.get("Prefix") == prefix
        and str(_value(t, r.get("ExpirationInDays"), {RETENTION: 400})) == "400"
        for r in expires
    ):
        problems.append(
            f"{BUCKET}: bodies do not expire after {RETENTION}, their records' retention, when set"
        )

    policies = [
        r["Properties"].get("PolicyDocument", {})
        for r in resources(t, "AWS::S3::BucketPolicy").values()
        if r.get("Properties", {}).get("Bucket") == {"Ref": BUCKET}
    ]
    objects = {"Fn::Sub": f"${{{BUCKET}.Arn}}/*"}
    if not any(
        _denies_plain_http(s_, "s3:*", [{"Fn::GetAtt": [BUCKET, "Arn"]}, objects])
        for policy in policies
        for s_ in statements(policy)
    ):
        problems.append(f"{BUCKET}: no bucket policy denies every request without TLS (aws:SecureTransport)")
    for policy in policies:
        for s_ in statements(policy):
            if s_.get("Effect") != "Deny":
                problems.append(
                    f"{BUCKET}: its policy allows {s_.get('Action')!r}: grants belong in the roles"
                )
    return problems


def _denies_plain_http(statement: dict[str, Any], action: str, targets: list[Any]) -> bool:
    """Denies everyone every action of the service (`action`, "s3:*") on every one of `targets` when
    the request has no TLS, with no other condition narrowing it."""
    condition = statement.get("Condition", {})
    covered = {json.dumps(r, sort_keys=True) for r in listed(statement.get("Resource", []))}
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and action in listed(statement.get("Action", []))
        and {json.dumps(r, sort_keys=True) for r in targets} <= covered
        and list(condition) == ["Bool"]
        and list(condition["Bool"]) == ["aws:SecureTransport"]
        and str(condition["Bool"]["aws:SecureTransport"]).lower() == "false"
    )


def key_problems(t: Template) -> list[str]:
    """The customer managed key, made only when KeyAlias is set: rotated, retained, and a key policy
    that names who uses it: the functions' roles (through S3 and SQS only), DynamoDB and SQS for the
    account's principals IAM allows, CloudWatch Logs for this stack's two log groups; the account
    administers it but cannot hand out its use through IAM. Every store of data uses it."""
    problems = []
    for name in ("DataKey", "DataKeyAlias"):
        if name not in resources(t):
            return [f"{name}: missing"]
        if deployed_props(t, name, {}):
            problems.append(f"{name}: made without KeyAlias (the default is AWS's keys)")
        if not deployed_props(t, name, WITH_KEY):
            problems.append(f"{name}: not made when KeyAlias is set")
    key = t["Resources"]["DataKey"]
    p = key.get("Properties", {})
    if p.get("EnableKeyRotation") is not True:
        problems.append("DataKey: no yearly rotation")
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        if key.get(policy) != "Retain":
            problems.append(f"DataKey: {policy} is not Retain: the retained table, bucket and queues need it")
    alias = props(t, "DataKeyAlias")
    if alias != {"AliasName": {"Fn::Sub": "alias/${KeyAlias}"}, "TargetKeyId": {"Ref": "DataKey"}}:
        problems.append(f"DataKeyAlias: {alias}")
    account = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    roles = [{"Fn::GetAtt": [role_of(t, f), "Arn"]} for f in HANDLERS]
    log_groups = sorted(
        _sub_text(props(t, g).get("LogGroupName")) for g in resources(t, "AWS::Logs::LogGroup")
    )
    log_arns = sorted(
        (
            {"Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{g}"}
            for g in log_groups
        ),
        key=json.dumps,
    )
    seen = set()
    for st in statements(p.get("KeyPolicy", {})):
        sid, principal, actions = st.get("Sid", "?"), st.get("Principal"), set(listed(st.get("Action", [])))
        if isinstance(principal, dict) and isinstance(principal.get("AWS"), list):
            principal = {**principal, "AWS": present(principal["AWS"])}  # a role there under a condition
        condition = st.get("Condition", {})
        via = {
            str(_sub_text(v)).split(".")[0]
            for v in listed(condition.get("StringEquals", {}).get("kms:ViaService", []))
        }
        if (
            st.get("Effect") != "Allow"
            or st.get("Resource") != "*"
            or "NotAction" in st
            or "NotPrincipal" in st
        ):
            problems.append(f"key policy {sid}: not a plain Allow on the key")
        if principal == account and not actions & USE_ACTIONS:
            seen.add("administration")
        elif principal == account and via in ({"dynamodb"}, {"sqs"}):
            if condition.get("StringEquals", {}).get("kms:CallerAccount") != {"Ref": "AWS::AccountId"}:
                problems.append(f"key policy {sid}: through {via} for callers of any account")
            seen.add(next(iter(via)))
        elif principal == {"AWS": roles}:
            if (
                actions != {"kms:GenerateDataKey", "kms:Decrypt"}
                or via != {"s3", "sqs"}
                or len(condition) != 1
            ):
                problems.append(
                    f"key policy {sid}: the functions' use is {sorted(actions)} through {sorted(via)}"
                )
            seen.add("functions")
        elif principal == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}:
            context = condition.get("ArnEquals", {}).get("kms:EncryptionContext:aws:logs:arn")
            if list(condition) != ["ArnEquals"] or sorted(listed(context), key=json.dumps) != log_arns:
                problems.append(f"key policy {sid}: CloudWatch Logs for {context}, not {log_arns}")
            seen.add("logs")
        else:
            problems.append(f"key policy {sid}: {principal} may {sorted(actions)}")
    expected = {"administration", "functions", "dynamodb", "sqs", "logs"}
    if seen != expected:
        problems.append(f"key policy: statements for {sorted(seen)}, expected {sorted(expected)}")
    for group in resources(t, "AWS::Logs::LogGroup"):
        if "KmsKeyId" in deployed_props(t, group, {}):
            problems.append(f"{group}: a KMS key without KeyAlias")
        if deployed_props(t, group, WITH_KEY).get("KmsKeyId") != DATA_KEY_ARN:
            problems.append(f"{group}: not encrypted with the stack's key when KeyAlias is set")
    if not re.fullmatch(t["Parameters"]["KeyAlias"].get("AllowedPattern", ""), "") or re.fullmatch(
        t["Parameters"]["KeyAlias"].get("AllowedPattern", ""), "alias/x*"
    ):
        problems.append("KeyAlias: its pattern must admit '' (no key) and no wildcard")
    return problems


def metric_filters(t: Template) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(namespace, metric) -> the filters that publish it: their log group, event, code and value."""
    published: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in resources(t, "AWS::Logs::MetricFilter").values():
        p = f["Properties"]
        pattern = p.get("FilterPattern", "")
        event = re.search(r'\$\.event\s*=\s*"(\w+)"', pattern)
        code = re.search(r'\$\.code\s*=\s*"(\w+)"', pattern)
        for transformation in p.get("MetricTransformations", []):
            key = (json.dumps(transformation["MetricNamespace"]), transformation["MetricName"])
            published.setdefault(key, []).append(
                {
                    "log_group": ref_name(p.get("LogGroupName")),
                    "event": event[1] if event else None,
                    "code": code[1] if code else None,
                    "value": str(transformation["MetricValue"]),
                    "fields": sorted(set(re.findall(r"\$\.(\w+)", pattern))),
                }
            )
    return published


def emf_metrics(t: Template) -> dict[tuple[str, str], tuple[str, ...]]:
    """(namespace, metric) -> its dimension names, for every EMF metric the functions write
    (adapters.runtime.metrics), in the namespace their environment gives them."""
    namespaces = {
        json.dumps(function_props(t, f).get("Environment", {}).get("Variables", {}).get(
            "SENDGUARD_METRICS_NAMESPACE", "sendguard"))
        for f in HANDLERS
    }  # fmt: skip
    return {(ns, name): dims for ns in namespaces for name, dims in EMF_DIMENSIONS.items()}


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(id, metric) for every metric an alarm reads; a single-metric alarm's id is ''."""
    p = alarm["Properties"]
    if "MetricName" in p:
        return [("", {k: p.get(k) for k in ("Namespace", "MetricName", "Dimensions")})]
    return [(m["Id"], m["MetricStat"]["Metric"]) for m in p.get("Metrics", []) if "MetricStat" in m]


def filter_problems(t: Template) -> list[str]:
    """Every metric filter reads a log line of the contract, in a log group that has such lines,
    and a field that line has."""
    problems = []
    for (_, metric), filters in metric_filters(t).items():
        for f in filters:
            if f["event"] not in LOG_EVENTS:
                problems.append(f"{metric}: the filter matches no log event of the contract")
                continue
            if f["log_group"] not in LOGGED_BY.get(f["event"], BOTH_LOG_GROUPS):
                problems.append(f"{metric}: {f['event']!r} lines are never written to {f['log_group']}")
            value = f["value"]
            if value != "1" and value.removeprefix("$.") not in LOG_EVENTS[f["event"]]:
                problems.append(f"{metric}: {value} is not a field of {f['event']!r} lines")
            for field in f["fields"]:
                if field not in LOG_EVENTS[f["event"]]:
                    problems.append(
                        f"{metric}: the filter reads $.{field}, not a field of {f['event']!r} lines"
                    )
    return problems


def alarm_problems(t: Template) -> list[str]:
    """The alarms the issue names, each on the metric that means it, each notifying someone."""
    problems = []
    alarms = resources(t, "AWS::CloudWatch::Alarm")
    published = metric_filters(t)

    def sources(metric: dict[str, Any]) -> list[dict[str, Any]]:
        return published.get((json.dumps(metric.get("Namespace")), metric.get("MetricName", "")), [])

    emf = emf_metrics(t)

    def emitted(metric: dict[str, Any]) -> tuple[str, ...] | None:
        return emf.get((json.dumps(metric.get("Namespace")), metric.get("MetricName", "")))

    for name, alarm in alarms.items():
        if not alarm["Properties"].get("AlarmActions"):
            problems.append(f"{name}: notifies no one")
        for _, metric in alarm_metrics(alarm):
            dims = emitted(metric)
            if not str(metric.get("Namespace")).startswith("AWS/") and not sources(metric) and dims is None:
                problems.append(
                    f"{name}: no metric filter or EMF document publishes {metric.get('MetricName')}"
                )
            names = tuple(d.get("Name") for d in metric.get("Dimensions") or [])
            if dims is not None and tuple(sorted(names)) != tuple(sorted(dims)):
                problems.append(f"{name}: dimensions {names}, but the metric is published with {dims}")

    def expect(name: str, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
        if name not in alarms:
            problems.append(f"{name}: missing ({what})")
        elif not condition(alarms[name]):
            problems.append(f"{name}: is not {what}")

    def reads(
        alarm: dict[str, Any], event: str, value: str, groups: set[str], code: str | None = None
    ) -> bool:
        for _, metric in alarm_metrics(alarm):
            found = [f for f in sources(metric) if f["event"] == event and f["code"] == code]
            if found and {f["value"] for f in found} == {value} and {f["log_group"] for f in found} == groups:
                return True
        return False

    expect(
        "InFlightPastLeaseAlarm",
        lambda a: reads(a, "reconcile_pass", "$.overdue_in_flight", {"ReconcilerLogGroup"}),
        "on reconcile_pass's overdue_in_flight",
    )

    def on_emf(alarm: dict[str, Any], metric: str, statistic: str) -> bool:
        p = alarm["Properties"]
        return [(i, emitted(m) is not None, m.get("MetricName")) for i, m in alarm_metrics(alarm)] == [
            ("", True, metric)
        ] and p.get("Statistic") == statistic

    expect(
        "ExhaustedAlarm",
        lambda a: (
            on_emf(a, "Exhausted", "Sum")
            and a["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
            and str(a["Properties"].get("Threshold")) == "0"
        ),
        "on the EMF metric Exhausted, any record flagged",
    )
    expect(
        "BacklogAlarm",
        lambda a: (
            on_emf(a, "ReconcilerDue", "Minimum")
            and int(a["Properties"].get("EvaluationPeriods", 1)) >= 2
            and int(a["Properties"].get("DatapointsToAlarm", a["Properties"].get("EvaluationPeriods", 1)))
            == int(a["Properties"].get("EvaluationPeriods", 1))
            and a["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
        ),
        "on the EMF metric ReconcilerDue staying high (Minimum, over several periods)",
    )
    expect(
        "DeadLetterQueueDepthAlarm",
        lambda a: (
            alarm_metrics(a)
            == [
                (
                    "",
                    {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Dimensions": [
                            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
                        ],
                    },
                )
            ]
        ),
        "on the dead-letter queue's visible messages",
    )

    def error_rate(alarm: dict[str, Any]) -> bool:
        ids = {i: m for i, m in alarm_metrics(alarm) if any(f["event"] == "answer" for f in sources(m))}
        errors = [i for i, m in ids.items() if any(f["code"] == "SYSTEM_ERROR" for f in sources(m))]
        answers = [i for i, m in ids.items() if any(f["code"] is None for f in sources(m))]
        returned = [m for m in alarm["Properties"].get("Metrics", []) if m.get("ReturnData", True)]
        text = " ".join(strings([m.get("Expression", "") for m in returned]))
        return bool(errors and answers) and all(re.search(rf"\b{i}\b", text) for i in errors + answers)

    expect("SystemErrorRateAlarm", error_rate, "SYSTEM_ERROR answers divided by all answers")
    expect(
        "ReconcilerNotRunningAlarm",
        lambda a: (
            on_emf(a, "ReconcilerDue", "SampleCount")
            and a["Properties"].get("TreatMissingData") == "breaching"
            and a["Properties"].get("ComparisonOperator") == "LessThanThreshold"
        ),
        "a heartbeat on the passes' ReconcilerDue samples that treats missing data as breaching",
    )
    expect(
        "ReconcilerFailuresAlarm",
        lambda a: (
            reads(a, "reconcile_pass", "$.failed", {"ReconcilerLogGroup"})
            and reads(a, "reconcile_failed", "1", {"ReconcilerLogGroup"})
        ),
        "on reconcile_pass's failed and each reconcile_failed (a fanned-out worker that raises every"
        " pass is seen by no other alarm)",
    )
    return problems


def function_problems(t: Template) -> list[str]:
    """Handlers, routes, schedule, timeouts, logging and the reconciler's concurrency."""
    problems = []
    for function, handler in HANDLERS.items():
        if function not in resources(t):
            problems.append(f"{function}: missing")
            continue
        p = function_props(t, function)
        if p.get("Handler") != handler:
            problems.append(f"{function}: handler {p.get('Handler')!r}, the contract says {handler!r}")
        if p.get("LoggingConfig", {}).get("LogGroup") != {"Ref": LOG_GROUPS[function]}:
            problems.append(f"{function}: does not log to {LOG_GROUPS[function]}, where its filters look")
    if problems:
        return problems
    submit, reconciler = function_props(t, SUBMIT), function_props(t, RECONCILER)
    routes = {
        (e["Properties"].get("Method"), e["Properties"].get("Path"))
        for e in submit.get("Events", {}).values()
        if e.get("Type") == "HttpApi"
    }
    if routes != ROUTES:
        problems.append(f"{SUBMIT}: routes {sorted(routes)}, the contract is {sorted(ROUTES)}")
    if int(submit.get("Timeout", 3)) >= API_GATEWAY_INTEGRATION_LIMIT_SECONDS:
        problems.append(f"{SUBMIT}: timeout reaches API Gateway's {API_GATEWAY_INTEGRATION_LIMIT_SECONDS} s")
    schedules = [
        e["Properties"].get("Schedule")
        for e in reconciler.get("Events", {}).values()
        if e.get("Type") == "Schedule"
    ]
    if schedules != ["rate(1 minute)"]:
        problems.append(f"{RECONCILER}: schedules {schedules}, expected one, every minute")
    elif int(reconciler.get("Timeout", 3)) > 60:
        problems.append(f"{RECONCILER}: a pass may outlast the one-minute interval")
    concurrency = reconciler.get("ReservedConcurrentExecutions")
    if isinstance(concurrency, dict) and "Fn::If" in concurrency:
        concurrency = concurrency["Fn::If"][1]
    if str(parameter_default(t, concurrency)) != "1":
        problems.append(
            f"{RECONCILER}: reserved concurrency {parameter_default(t, concurrency)!r} by default, not 1"
        )
    return problems


FANOUT_PARAMETER = "ReconcilerFanout"
WORKER_RETRIES, WORKER_EVENT_AGE_S = 0, 60  # the next pass, a minute later, re-splits the shards


def fanout_problems(t: Template) -> list[str]:
    """The fan-out (adapters.runtime.fanout) as it is deployed: the scheduled function names the
    worker function and the fan-out width; the workers are not scheduled, never fan out themselves,
    and are not retried by Lambda; and the one Lambda grant in the template is the scheduled
    function's `lambda:InvokeFunction` on the worker function's ARN (least privilege)."""
    problems = []
    if WORKER not in resources(t) or RECONCILER not in resources(t):
        return [f"{WORKER}: missing"]
    parameter = t.get("Parameters", {}).get(FANOUT_PARAMETER, {})
    if (parameter.get("Default"), parameter.get("MinValue")) != (1, 1) or not (
        1 <= int(parameter.get("MaxValue", 0)) <= MAX_SHARDS
    ):
        problems.append(f"{FANOUT_PARAMETER}: not 1 by default, within 1..{MAX_SHARDS} shards: {parameter}")
    coordinator = function_props(t, RECONCILER).get("Environment", {}).get("Variables", {})
    wanted = {
        "SENDGUARD_RECONCILER_FANOUT": {"Ref": FANOUT_PARAMETER},
        "SENDGUARD_RECONCILER_WORKER_FUNCTION": {
            "Fn::If": [FANS_OUT, {"Ref": WORKER}, {"Ref": "AWS::NoValue"}]
        },
    }
    # No workers and no grant to invoke them unless the pass fans out (ReconcilerFanout above 1).
    if t.get("Conditions", {}).get(FANS_OUT) != {"Fn::Not": [{"Fn::Equals": [{"Ref": FANOUT_PARAMETER}, 1]}]}:
        problems.append(f"{FANS_OUT}: not the condition that {FANOUT_PARAMETER} is above 1")
    for name in (WORKER, "ReconcilerWorkerRole", "FanOutPolicy"):
        if t["Resources"].get(name, {}).get("Condition") != FANS_OUT:
            problems.append(f"{name}: made without a fan-out (Condition {FANS_OUT})")
    for name, value in wanted.items():
        if coordinator.get(name) != value:
            problems.append(f"{RECONCILER}: {name} is {coordinator.get(name)!r}, not {value!r}")
    worker = function_props(t, WORKER)
    if worker.get("Events"):
        problems.append(f"{WORKER}: has events of its own; only the scheduled pass invokes it")
    if "SENDGUARD_RECONCILER_FANOUT" in worker.get("Environment", {}).get("Variables", {}):
        problems.append(f"{WORKER}: may fan out itself (SENDGUARD_RECONCILER_FANOUT)")
    config = worker.get("EventInvokeConfig", {})
    retries, age = config.get("MaximumRetryAttempts"), config.get("MaximumEventAgeInSeconds")
    if (retries, age) != (WORKER_RETRIES, WORKER_EVENT_AGE_S):
        problems.append(
            f"{WORKER}: retries {retries!r} and event age {age!r}; the next pass re-splits the shards "
            f"a minute later ({WORKER_RETRIES}, {WORKER_EVENT_AGE_S} s)"
        )
    if int(worker.get("Timeout", 3)) > 60:
        problems.append(f"{WORKER}: a worker may outlast the one-minute interval")
    invokes = [
        (name, st)
        for name, policy in resources(t, "AWS::IAM::Policy").items()
        for st in statements(policy)
        if any(str(a).lower().startswith("lambda:") for a in listed(st.get("Action", [])))
    ]
    invokes += [
        (name, st)
        for name, role in resources(t, "AWS::IAM::Role").items()
        for st in statements(role.get("Properties", {}).get("Policies", []))
        if any(str(a).lower().startswith("lambda:") for a in listed(st.get("Action", [])))
    ]
    if len(invokes) != 1:
        problems.append(f"Lambda grants in {sorted(n for n, _ in invokes)}, expected the fan-out's alone")
    for name, st in invokes:
        attached = props(t, name).get("Roles", []) if name in resources(t, "AWS::IAM::Policy") else [name]
        role = role_of(t, RECONCILER)
        if attached != [{"Ref": role}] and attached != [role]:
            problems.append(f"{name}: the fan-out's grant is attached to {attached}, not {role} alone")
        if listed(st.get("Action")) != ["lambda:InvokeFunction"] or set(st) - {
            "Sid",
            "Effect",
            "Action",
            "Resource",
        }:
            problems.append(
                f"{name}: grants {st.get('Action')!r} (with {sorted(st)}), not lambda:InvokeFunction"
            )
        if st.get("Resource") != {"Fn::GetAtt": [WORKER, "Arn"]}:
            problems.append(f"{name}: invokes {st.get('Resource')!r}, not {WORKER}'s ARN alone")
    if role_of(t, WORKER) == role_of(t, RECONCILER):
        problems.append(f"{WORKER}: shares the scheduled function's role, and its fan-out grant")
    return problems


CONSUMER_ENVIRONMENT = {
    "SENDGUARD_CONSUMER_TABLE": {"Ref": CONSUMER_TABLE},
    "SENDGUARD_CONSUMER_MODE": {"Ref": CONSUMER_MODE},
    "SENDGUARD_CONSUMER_MAX_RECEIVES": {"Ref": "ConsumerInboxMaxReceives"},
    "SENDGUARD_CONSUMER_QUEUE_MAX_RECEIVE_COUNT": {"Ref": "ConsumerMaxReceiveCount"},
}
VISIBILITY_PER_TIMEOUT = 6  # AWS's rule for a queue a Lambda event source mapping polls


def ready_consumer_problems(t: Template) -> list[str]:
    """The ready consumer (docs/inbox.md's settings): off by default (the queue may have consumers of
    its own), every one of its resources made only when ConsumerMode turns it on; the real handler,
    configured by its environment as the code reads it; an event source mapping on Queue that reads
    the partial batch response; a visibility timeout of at least 6 x the function's timeout; a
    dead-letter queue that takes a message only after the inbox gave it up; its own table."""
    from adapters.aws_lambda_consumer import MODES, ConsumerConfig

    problems = []
    mode = t.get("Parameters", {}).get(CONSUMER_MODE, {})
    if mode.get("Default") != "none":
        problems.append(
            f"{CONSUMER_MODE} defaults to {mode.get('Default')!r}: a stack update would start a "
            "consumer that takes messages from the queue's own consumers"
        )
    if set(mode.get("AllowedValues", [])) != {"none", *MODES}:
        problems.append(f"{CONSUMER_MODE} admits {mode.get('AllowedValues')}, not none and {MODES}")
    if CONSUMER not in resources(t):
        return [*problems, f"{CONSUMER}: missing"]
    on = {CONSUMER_MODE: "transactional"}
    for name, resource in resources(t).items():
        if not name.startswith("Consumer"):
            continue
        condition = resource.get("Condition")
        if condition is None or not condition_holds(t, {"Condition": condition}, on):
            problems.append(f"{name}: not made when {CONSUMER_MODE} turns the consumer on")
        elif condition_holds(t, {"Condition": condition}, {CONSUMER_MODE: "none"}):
            problems.append(f"{name}: made with {CONSUMER_MODE}=none")
    function = function_props(t, CONSUMER)
    if function.get("Handler") != CONSUMER_HANDLER:
        problems.append(f"{CONSUMER}: handler {function.get('Handler')!r}, not {CONSUMER_HANDLER}")
    if function.get("LoggingConfig", {}).get("LogGroup") != {"Ref": "ConsumerLogGroup"}:
        problems.append(f"{CONSUMER}: does not log to ConsumerLogGroup")
    variables = props(t, CONSUMER).get("Environment", {}).get("Variables", {})
    for name, expected in CONSUMER_ENVIRONMENT.items():
        if variables.get(name) != expected:
            problems.append(f"{CONSUMER}: {name} is {variables.get(name)!r}, not {expected!r}")
    rendered = {name: str(parameter_default(t, value)) for name, value in variables.items()}
    rendered["SENDGUARD_CONSUMER_TABLE"] = SAMPLE_REFS["AWS::DynamoDB::Table"]
    for value in MODES:
        try:
            ConsumerConfig.from_env({**rendered, "SENDGUARD_CONSUMER_MODE": value})
        except ConfigError as exc:  # what the function would refuse at its first invocation
            problems.append(f"{CONSUMER}: its defaults in {value} mode are refused: {exc}")
    mappings = [
        e.get("Properties", {}) for e in function.get("Events", {}).values() if e.get("Type") == "SQS"
    ]
    if [m.get("Queue") for m in mappings] != [{"Fn::GetAtt": ["Queue", "Arn"]}]:
        problems.append(f"{CONSUMER}: not fed by one event source mapping on Queue")
    if any(m.get("FunctionResponseTypes") != ["ReportBatchItemFailures"] for m in mappings):
        problems.append(f"{CONSUMER}: its mapping ignores batchItemFailures (no ReportBatchItemFailures)")
    if any(int(m.get("BatchSize", 10)) > 10 for m in mappings):
        problems.append(f"{CONSUMER}: batches over 10 need a batching window the function does not expect")
    queue = props(t, "Queue")
    visibility = parameter_default(t, queue.get("VisibilityTimeout", 30))
    timeout = int(function.get("Timeout", 3))
    if int(visibility) < VISIBILITY_PER_TIMEOUT * timeout:
        problems.append(
            f"Queue: visibility timeout {visibility} s under {VISIBILITY_PER_TIMEOUT} x the "
            f"consumer's {timeout} s timeout: a message comes back while its invocation runs"
        )
    margin = int(parameter_default(t, function["Environment"]["Variables"]["SENDGUARD_LEASE_MARGIN_SECONDS"]))
    if margin >= int(visibility) - timeout:
        problems.append(
            f"{CONSUMER}: a guarded claim's lease ({timeout} + {margin} s) outlives the visibility "
            f"timeout ({visibility} s): the redelivery after a crash answers busy"
        )
    redrive = queue.get("RedrivePolicy", {})
    receives = parameter_default(t, variables.get("SENDGUARD_CONSUMER_MAX_RECEIVES"))
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}:
        problems.append("Queue: no dead-letter queue for the messages the consumer gives up")
    elif int(parameter_default(t, redrive.get("maxReceiveCount", 0))) <= int(receives or 0):
        problems.append(
            "Queue: SQS moves a message to the dead-letter queue before the inbox gives it up "
            "(maxReceiveCount <= the inbox's max receives)"
        )
    if redrive.get("maxReceiveCount") != variables.get("SENDGUARD_CONSUMER_QUEUE_MAX_RECEIVE_COUNT"):
        problems.append(f"{CONSUMER}: is not told the queue's maxReceiveCount (it checks its own is below)")
    table = deployed_props(t, CONSUMER_TABLE, on)
    if table.get("KeySchema") != [{"AttributeName": "pk", "KeyType": "HASH"}]:
        problems.append(
            f"{CONSUMER_TABLE}: key {table.get('KeySchema')!r}, not pk (what the consumer writes)"
        )
    if table.get("BillingMode") != "PAY_PER_REQUEST":
        problems.append(f"{CONSUMER_TABLE}: not on-demand")
    if table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        problems.append(f"{CONSUMER_TABLE}: point-in-time recovery is off")
    if t["Resources"].get(CONSUMER_TABLE, {}).get("DeletionPolicy") != "Retain":
        problems.append(f"{CONSUMER_TABLE}: deleted with the stack (its effects and inbox records with it)")
    if deployed_props(t, CONSUMER_TABLE, WITH_KEY).get("SSESpecification", {}).get("KMSMasterKeyId") != (
        DATA_KEY_ARN
    ):
        problems.append(f"{CONSUMER_TABLE}: not encrypted with the stack's key when KeyAlias is set")
    grants_on = {(a, r) for a, r in grants(deployed(t, t, WITH_KEY), "ConsumerRole")}
    grants_off = {(a, r) for a, r in grants(deployed(t, t, on), "ConsumerRole")}
    if ("kms:Decrypt", "DataKey") not in grants_on or ("kms:Decrypt", "DataKey") in grants_off:
        problems.append("ConsumerRole: kms:Decrypt on DataKey not exactly when KeyAlias encrypts the queue")
    return problems


def test_the_function_build_ships_the_packages_with_their_bytecode(tmp_path: Path) -> None:
    """`sam build`'s step for a function (`make build-SubmitFunction`): the two packages and, for
    every module, bytecode that the interpreter loads without checking the source (the zip does not
    keep file times); run here by this interpreter, as `sam build` runs it by the runtime's."""
    function_package(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapters", "statemodel"]
    sources = sorted(tmp_path.rglob("*.py"))
    assert len(sources) > 30 and not list(tmp_path.rglob("test_*.py"))
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        flags = int.from_bytes(cached.read_bytes()[4:8], "little")  # PEP 552: 0b01 hash, unchecked
        assert flags == 0b01, (source, flags)
    loaded = subprocess.run(
        [sys.executable, "-c", "import adapters.aws_lambda as m; print(m.__cached__)"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,  # not the repository, whose own packages would come first
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip().startswith(str(tmp_path))


ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}  # Lambda's name: the wheel platforms'


def makefile_variable(makefile: str, name: str) -> str | None:
    found = re.search(rf"^{name}\s*:?=\s*(.*?)\s*$", makefile, re.MULTILINE)
    return None if found is None else found[1]


def recipe(makefile: str, target: str) -> str:
    """A target's commands, continuation lines joined ('' for no such target)."""
    found = re.search(rf"^[^#\n]*\b{target}\b[^\n]*:[^\n]*\n((?:\t[^\n]*\n)*)", makefile, re.MULTILINE)
    return "" if found is None else re.sub(r"\\\n\s*", " ", found[1])


def locked(text: str) -> dict[str, tuple[str, list[str]]]:
    """A hashed requirements file: name -> (its requirement, its hashes), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    entries = {}
    for line in joined.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split()
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=sha256:")]
        entries[Requirement(requirement).name.lower().replace("_", "-")] = (requirement, hashes)
    return entries


def lock_problems(lock: str, makefile: str, runtime: Any, architecture: Any, layer: str) -> list[str]:
    """The layer's lock pins every distribution it installs (==, with hashes), inside
    pyproject.toml's ranges, resolved for the functions' Python and platform; the Makefile installs
    it for that target with every hash checked."""
    problems = []
    if makefile_variable(makefile, "LAYER_LOCK") != str(LAYER_LOCK.relative_to(ROOT)):
        problems.append(f"the Makefile's LAYER_LOCK is not {LAYER_LOCK.relative_to(ROOT)}")
    command = recipe(makefile, f"build-{layer}")
    for flag in (
        "--require-hashes",
        "--only-binary=:all:",
        "--implementation cp",
        "--python-version $(LAYER_PYTHON_VERSION)",
        "--platform $(LAYER_PIP_PLATFORM)",
        "-r $(LAYER_LOCK)",
    ):
        if flag not in command:
            problems.append(f"build-{layer} does not install with {flag}")
    version = str(runtime).removeprefix("python")
    machine = ARCHITECTURES.get(str(architecture), "?")
    expected = {
        "LAYER_PYTHON_VERSION": version,
        "LAYER_PIP_PLATFORM": f"manylinux2014_{machine}",
        "LAYER_UV_PLATFORM": f"{machine}-manylinux2014",
    }
    for name, value in expected.items():
        if makefile_variable(makefile, name) != value:
            problems.append(f"the Makefile's {name} is {makefile_variable(makefile, name)!r}, not {value!r}")
    header = " ".join(line for line in lock.splitlines() if line.startswith("#"))
    target = f"--python-version {version} --python-platform {expected['LAYER_UV_PLATFORM']}"
    if target not in header:
        problems.append(f"the lock was not resolved for {target} (`make lock` says so in its header)")
    entries = locked(lock)
    for name, (requirement, hashes) in sorted(entries.items()):
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+!\-]+", requirement):
            problems.append(f"{name}: {requirement!r} is not pinned to one release (==)")
        if not hashes:
            problems.append(f"{name}: no hash")
    for dependency in tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]:
        wanted = Requirement(dependency)
        name = wanted.name.lower().replace("_", "-")
        if name not in entries:
            problems.append(f"{name}: a dependency of pyproject.toml the lock does not pin")
            continue
        pinned = entries[name][0].partition("==")[2]
        if pinned not in wanted.specifier:
            problems.append(f"{name}: the lock's {pinned} is outside pyproject.toml's {wanted.specifier}")
    return problems


LAYER_LOCK = ROOT / "deploy" / "layer" / "requirements.txt"


def packaging_problems(t: Template, lock: str | None = None, makefile: str | None = None) -> list[str]:
    """The functions' code is the repository root, built by the Makefile with its bytecode; the
    layer is built by the Makefile from its lock (`lock_problems`). `lock` and `makefile`: the
    files' texts (the repository's by default)."""
    problems = []
    layers = resources(t, "AWS::Serverless::LayerVersion")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8") if makefile is None else makefile
    lock = LAYER_LOCK.read_text(encoding="utf-8") if lock is None else lock
    targets: dict[str, set[tuple[Any, Any]]] = {}  # layer -> the (runtime, architecture) of its users
    for function in [*HANDLERS, CONSUMER]:
        p = function_props(t, function)
        code = p.get("CodeUri")
        if not isinstance(code, str) or (TEMPLATE.parent / code).resolve() != ROOT:
            problems.append(f"{function}: CodeUri {code!r} is not the repository root")
        if (t["Resources"][function].get("Metadata") or {}).get("BuildMethod") != "makefile":
            problems.append(f"{function}: not built by the Makefile (its bytecode would not ship)")
        elif not recipe(makefile, f"build-{function}"):
            problems.append(f"{function}: the Makefile has no build-{function} target")
        used = [layer["Ref"] for layer in p.get("Layers", []) if isinstance(layer, dict) and "Ref" in layer]
        if not used or any(name not in layers for name in used):
            problems.append(f"{function}: no dependencies layer from this template")
        for name in used:
            if name not in layers:
                continue
            layer = layers[name]
            if p.get("Runtime") not in layer["Properties"].get("CompatibleRuntimes", []):
                problems.append(f"{name}: not built for {function}'s runtime {p.get('Runtime')}")
            if [layer.get("Metadata", {}).get("BuildArchitecture")] != p.get("Architectures"):
                problems.append(f"{name}: BuildArchitecture differs from {function}'s architecture")
            targets.setdefault(name, set()).add((p.get("Runtime"), (p.get("Architectures") or ["?"])[0]))
    for name, layer in layers.items():
        content = layer["Properties"].get("ContentUri")
        if not isinstance(content, str) or (TEMPLATE.parent / content).resolve() != ROOT:
            problems.append(f"{name}: ContentUri {content!r} is not the repository root (the Makefile's)")
        if (layer.get("Metadata") or {}).get("BuildMethod") != "makefile":
            problems.append(f"{name}: not built by the Makefile (SAM's own pip checks no hash)")
        elif not recipe(makefile, f"build-{name}"):
            problems.append(f"{name}: the Makefile has no build-{name} target")
        for runtime, architecture in sorted(targets.get(name, set()), key=str):
            problems += lock_problems(lock, makefile, runtime, architecture, name)
    return problems


def guide_problems(t: Template, guide: str) -> list[str]:
    """The operations guide has a section for every alarm in the template, each with a command or
    query to run, and covers deploying, the CLIs and the correlation-id query."""
    problems = []
    headings = re.finditer(r"(?ms)^###\s+`?(\w+)`?\s*$(.*?)(?=^##)", guide + "\n##")
    sections = {m[1]: m[2] for m in headings}
    for alarm in resources(t, "AWS::CloudWatch::Alarm"):
        if alarm not in sections:
            problems.append(f"{alarm}: no section in docs/operations.md")
        elif "```" not in sections[alarm]:
            problems.append(f"{alarm}: its section gives no command or query")
    for phrase in (
        "sam build",
        "sam deploy --guided",
        "sendguard audit",
        "sendguard reconcile",
        "sendguard status",
        "sendguard redrive --exhausted",
        "correlation_id",
    ):
        if phrase not in guide:
            problems.append(f"docs/operations.md never mentions {phrase!r}")
    return problems


# ---- the checks hold ---------------------------------------------------------------------------------

CHECKS: dict[str, Check] = {
    "wildcards": wildcard_problems,
    "least privilege": privilege_problems,
    "environment": environment_problems,
    "runtime": runtime_problems,
    "table": table_problems,
    "queue": queue_problems,
    "key": key_problems,
    "bucket": bucket_problems,
    "metric filters": filter_problems,
    "alarms": alarm_problems,
    "functions": function_problems,
    "packaging": packaging_problems,
    "fan-out": fanout_problems,
    "ready consumer": ready_consumer_problems,
}


def test_cfn_lint_passes_in_every_region() -> None:
    assert lint_problems(template_text(), REGIONS) == []


@pytest.mark.parametrize("name", CHECKS)
def test_the_template_passes(name: str, template: Template) -> None:
    assert CHECKS[name](template) == []


def test_the_guide_covers_every_alarm(template: Template) -> None:
    assert guide_problems(template, GUIDE.read_text(encoding="utf-8")) == []


# ---- and each can fail ---------------------------------------------------------------------------


def test_cfn_lint_rejects_a_broken_template() -> None:
    text = template_text()
    assert "BillingMode: PAY_PER_REQUEST" in text
    broken = text.replace("BillingMode: PAY_PER_REQUEST", "BillingMode: ON_DEMAND")
    assert any(p.startswith("E3030") for p in lint_problems(broken, ["us-east-1"]))


def statement(t: Template, role: str, sid: str) -> dict[str, Any]:
    document = role_policies(t, role)[0]
    found: dict[str, Any] = next(s for s in document["Statement"] if s.get("Sid") == sid)
    return found


def add_statement(role: str, action: Any, resource: Any) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        document = role_policies(t, role)[0]
        document["Statement"].append({"Effect": "Allow", "Action": action, "Resource": resource})

    return mutate


TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
QUEUE_ARN = {"Fn::GetAtt": ["Queue", "Arn"]}
OBJECTS_ARN = {"Fn::Sub": BODY_OBJECTS}
B, TLS = f"Resources.{BUCKET}.Properties", "Resources.BodyBucketPolicy.Properties.PolicyDocument.Statement.0"


def setter(path: str, value: Any) -> Callable[[Template], None]:
    """Set (or, with value None, delete) the item at a dotted path; digits index lists."""

    def mutate(t: Template) -> None:
        *parents, last = path.split(".")
        node: Any = t
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is None:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


def also(*mutations: Callable[[Template], None]) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        for m in mutations:
            m(t)

    return mutate


def extra_function(t: Template) -> None:
    t["Resources"]["ExtraFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Handler": "x.y", "Policies": ["AmazonDynamoDBFullAccess"]},
    }


def a_public_read(t: Template) -> None:
    document = props(t, "BodyBucketPolicy")["PolicyDocument"]
    document["Statement"].append(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": OBJECTS_ARN}
    )


R, G = "Resources", "Globals.Function.Environment.Variables"
K = "Resources.DataKey.Properties.KeyPolicy.Statement"


def add_key_statement(principal: Any, actions: list[str]) -> Callable[[Template], None]:
    def mutate(t: Template) -> None:
        policy = t["Resources"]["DataKey"]["Properties"]["KeyPolicy"]
        policy["Statement"].append(
            {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*"}
        )

    return mutate


F = "Resources.FanOutPolicy.Properties.PolicyDocument.Statement.0"
W = f"Resources.{WORKER}.Properties"

BROKEN: list[tuple[str, str, Callable[[Template], None]]] = [
    (
        "fan-out",
        "an invoke grant on every function",
        setter(
            f"{F}.Resource",
            {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"},
        ),
    ),
    (
        "fan-out",
        "an invoke grant on the scheduled function",
        setter(f"{F}.Resource", {"Fn::GetAtt": [RECONCILER, "Arn"]}),
    ),
    ("fan-out", "lambda:* for the fan-out", setter(f"{F}.Action", "lambda:*")),
    (
        "fan-out",
        "the workers may fan out too",
        setter(
            "Resources.FanOutPolicy.Properties.Roles",
            [{"Ref": "ReconcilerRole"}, {"Ref": "ReconcilerWorkerRole"}],
        ),
    ),
    (
        "fan-out",
        "the workers share the scheduled role",
        setter(f"{W}.Role", {"Fn::GetAtt": ["ReconcilerRole", "Arn"]}),
    ),
    ("fan-out", "Lambda's default two retries", setter(f"{W}.EventInvokeConfig", None)),
    (
        "fan-out",
        "a worker that fans out",
        setter(f"{W}.Environment.Variables.SENDGUARD_RECONCILER_FANOUT", 4),
    ),
    (
        "fan-out",
        "a scheduled worker",
        setter(f"{W}.Events", {"Tick": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}}),
    ),
    (
        "fan-out",
        "the coordinator not told its workers",
        setter(
            f"{R}.ReconcilerFunction.Properties.Environment.Variables.SENDGUARD_RECONCILER_WORKER_FUNCTION",
            None,
        ),
    ),
    ("fan-out", "a fan-out wider than the shards", setter(f"Parameters.{FANOUT_PARAMETER}.MaxValue", 1000)),
    ("fan-out", "a fan-out on by default", setter(f"Parameters.{FANOUT_PARAMETER}.Default", 4)),
    ("fan-out", "the fan-out's grant made without a fan-out", setter(f"{R}.FanOutPolicy.Condition", None)),
    ("fan-out", "workers made without a fan-out", setter(f"{R}.{WORKER}.Condition", None)),
    (
        "fan-out",
        "a fan-out condition true at 1",
        setter(f"Conditions.{FANS_OUT}", {"Fn::Equals": ["1", "1"]}),
    ),
    ("wildcards", "a `*` action", add_statement("SubmitRole", "dynamodb:*", TABLE_ARN)),
    ("wildcards", "a `*` resource", add_statement("ReconcilerRole", "sqs:SendMessage", "*")),
    (
        "wildcards",
        "a `*` inside a !Sub",
        add_statement("SubmitRole", "dynamodb:GetItem", {"Fn::Sub": "${Table.Arn}/*"}),
    ),
    (
        "wildcards",
        "every object of the bucket",
        add_statement("ReconcilerRole", "s3:GetObject", {"Fn::Sub": "${BodyBucket.Arn}/*"}),
    ),
    (
        "wildcards",
        "a non-object action on the body objects",
        add_statement("SubmitRole", "s3:PutObjectAcl", OBJECTS_ARN),
    ),
    ("wildcards", "a prefix of any value", setter(f"Parameters.{BODY_PREFIX}.AllowedPattern", None)),
    ("wildcards", "a prefix that may be empty", setter(f"Parameters.{BODY_PREFIX}.AllowedPattern", ".*")),
    (
        "wildcards",
        "NotAction",
        setter(f"{R}.SubmitPolicy.Properties.PolicyDocument.Statement.0.NotAction", ["s3:GetObject"]),
    ),
    (
        "least privilege",
        "the reconciler reads items",
        add_statement("ReconcilerRole", "dynamodb:GetItem", TABLE_ARN),
    ),
    ("least privilege", "submit queries", add_statement("SubmitRole", "dynamodb:Query", TABLE_ARN)),
    (
        "least privilege",
        "submit batch-reads",
        add_statement("SubmitRole", "dynamodb:BatchGetItem", TABLE_ARN),
    ),
    (
        "least privilege",
        "the reconciler puts items",
        add_statement("ReconcilerRole", "dynamodb:PutItem", TABLE_ARN),
    ),
    (
        "least privilege",
        "the reconciler writes bodies",
        add_statement("ReconcilerRole", "s3:PutObject", OBJECTS_ARN),
    ),
    ("least privilege", "a body deleted", add_statement("SubmitRole", "s3:DeleteObject", OBJECTS_ARN)),
    (
        "least privilege",
        "the bucket listed",
        add_statement("ReconcilerRole", "s3:ListBucket", {"Fn::GetAtt": [BUCKET, "Arn"]}),
    ),
    (
        "least privilege",
        "the reconciler cannot read the bodies",
        setter(f"{R}.ReconcilerPolicy.Properties.PolicyDocument.Statement.2", None),
    ),
    ("least privilege", "submit scans", add_statement("SubmitRole", "dynamodb:Scan", TABLE_ARN)),
    ("least privilege", "a delete", add_statement("ReconcilerRole", "dynamodb:DeleteItem", TABLE_ARN)),
    ("least privilege", "a purge", add_statement("SubmitRole", "sqs:PurgeQueue", QUEUE_ARN)),
    ("least privilege", "a consumer's delete", add_statement("SubmitRole", "sqs:DeleteMessage", QUEUE_ARN)),
    (
        "least privilege",
        "a grant on another resource",
        add_statement("SubmitRole", "sqs:SendMessage", {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}),
    ),
    (
        "least privilege",
        "a missing grant",
        setter(f"{R}.ReconcilerPolicy.Properties.PolicyDocument.Statement.0.Action", "dynamodb:GetItem"),
    ),
    (
        "least privilege",
        "a managed policy",
        setter(
            f"{R}.SubmitRole.Properties.ManagedPolicyArns", ["arn:aws:iam::aws:policy/AdministratorAccess"]
        ),
    ),
    (
        "least privilege",
        "a shared role",
        setter(f"{R}.ReconcilerFunction.Properties.Role", {"Fn::GetAtt": ["SubmitRole", "Arn"]}),
    ),
    ("least privilege", "a function with SAM's own role", extra_function),
    ("environment", "a variable missing", setter(f"{G}.SENDGUARD_LOG_LEVEL", None)),
    ("environment", "a wrong default", setter("Parameters.RedriveAfterSeconds.Default", 600)),
    ("environment", "attempts past the limit", setter("Parameters.MaxAttempts.MaxValue", 50)),
    ("environment", "another table", setter(f"{G}.SENDGUARD_TABLE", "some-other-table")),
    ("environment", "no body bucket", setter(f"{G}.SENDGUARD_BODY_BUCKET", None)),
    ("environment", "another body prefix", setter(f"Parameters.{BODY_PREFIX}.Default", "bodies/")),
    (
        "runtime",
        "a re-drive delay the code refuses",
        setter("Parameters.RedriveAfterSeconds.MaxValue", 100_000),
    ),
    ("runtime", "an unbounded parameter", setter("Parameters.LeaseMarginSeconds.MaxValue", None)),
    ("runtime", "a table unlike provision's", setter(f"{R}.Table.Properties.GlobalSecondaryIndexes", [])),
    ("table", "provisioned capacity", setter(f"{R}.Table.Properties.BillingMode", "PROVISIONED")),
    (
        "table",
        "no point-in-time recovery",
        setter(f"{R}.Table.Properties.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled", False),
    ),
    ("table", "no deletion protection", setter(f"{R}.Table.Properties.DeletionProtectionEnabled", None)),
    (
        "table",
        "an index projecting every attribute",
        setter(f"{R}.Table.Properties.GlobalSecondaryIndexes.0.Projection.ProjectionType", "ALL"),
    ),
    (
        "table",
        "another index name",
        setter(f"{R}.Table.Properties.GlobalSecondaryIndexes.0.IndexName", "due"),
    ),
    (
        "table",
        "a TTL",
        setter(f"{R}.Table.Properties.TimeToLiveSpecification", {"AttributeName": "x", "Enabled": True}),
    ),
    ("table", "a deletable table", setter(f"{R}.Table.DeletionPolicy", "Delete")),
    (
        "bucket",
        "public ACLs honoured",
        setter(f"{B}.PublicAccessBlockConfiguration.IgnorePublicAcls", False),
    ),
    ("bucket", "no public access block", setter(f"{B}.PublicAccessBlockConfiguration", None)),
    ("bucket", "no TLS policy", setter(f"{R}.BodyBucketPolicy", None)),
    (
        "bucket",
        "a TLS rule for the bucket but not its objects",
        setter(f"{TLS}.Resource", [{"Fn::GetAtt": [BUCKET, "Arn"]}]),
    ),
    ("bucket", "a TLS rule that allows", setter(f"{TLS}.Effect", "Allow")),
    (
        "bucket",
        "a TLS rule on the wrong key",
        setter(f"{TLS}.Condition", {"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
    ),
    ("bucket", "ACLs enabled", setter(f"{B}.OwnershipControls.Rules.0.ObjectOwnership", "ObjectWriter")),
    ("bucket", "no default encryption", setter(f"{B}.BucketEncryption", None)),
    (
        "bucket",
        "a KMS key the functions cannot use",
        setter(
            f"{B}.BucketEncryption.ServerSideEncryptionConfiguration.0.Fn::If.2.ServerSideEncryptionByDefault.SSEAlgorithm",
            "aws:kms",
        ),
    ),
    ("bucket", "a deletable bucket", setter(f"{R}.{BUCKET}.DeletionPolicy", "Delete")),
    ("bucket", "uploads never aborted", setter(f"{B}.LifecycleConfiguration.Rules.0", None)),
    (
        "bucket",
        "no move to infrequent access",
        setter(f"{B}.LifecycleConfiguration.Rules.1.Transitions.0.StorageClass", "GLACIER"),
    ),
    (
        "bucket",
        "bodies that always expire",
        setter(
            f"{B}.LifecycleConfiguration.Rules.2",
            {"Id": "x", "Status": "Enabled", "Prefix": {"Ref": BODY_PREFIX}, "ExpirationInDays": 90},
        ),
    ),
    (
        "bucket",
        "bodies that expire by default",
        setter(f"Parameters.{RETENTION}.Default", 90),
    ),
    ("bucket", "bodies that never expire", setter(f"{B}.LifecycleConfiguration.Rules.2", None)),
    ("bucket", "a bucket policy that grants", a_public_read),
    ("queue", "no encryption", setter(f"{R}.Queue.Properties.SqsManagedSseEnabled", None)),
    (
        "queue",
        "an unencrypted dead-letter queue",
        setter(f"{R}.DeadLetterQueue.Properties.SqsManagedSseEnabled", False),
    ),
    ("queue", "no redrive policy", setter(f"{R}.Queue.Properties.RedrivePolicy", None)),
    (
        "metric filters",
        "a field no line has",
        setter(
            f"{R}.OverdueInFlightMetricFilter.Properties.MetricTransformations.0.MetricValue", "$.overdue"
        ),
    ),
    (
        "metric filters",
        "an event no one logs",
        setter(f"{R}.OverdueInFlightMetricFilter.Properties.FilterPattern", '{ $.event = "pass" }'),
    ),
    (
        "metric filters",
        "a pattern on a field the event does not have",
        setter(
            f"{R}.SystemErrorsMetricFilter.Properties.FilterPattern",
            '{ $.event = "answer" && $.error_code = "SYSTEM_ERROR" }',
        ),
    ),
    (
        "metric filters",
        "answers looked for in the reconciler's log group",
        setter(f"{R}.SystemErrorsMetricFilter.Properties.LogGroupName", {"Ref": "ReconcilerLogGroup"}),
    ),
    ("alarms", "an alarm missing", setter(f"{R}.DeadLetterQueueDepthAlarm", None)),
    (
        "alarms",
        "the heartbeat ignores silence",
        setter(f"{R}.ReconcilerNotRunningAlarm.Properties.TreatMissingData", "notBreaching"),
    ),
    (
        "alarms",
        "an alarm on the main queue",
        setter(
            f"{R}.DeadLetterQueueDepthAlarm.Properties.Dimensions.0.Value",
            {"Fn::GetAtt": ["Queue", "QueueName"]},
        ),
    ),
    ("alarms", "no exhausted alarm", setter(f"{R}.ExhaustedAlarm", None)),
    ("alarms", "no backlog alarm", setter(f"{R}.BacklogAlarm", None)),
    (
        "alarms",
        "a pass that raised not counted as a failure",
        setter(f"{R}.ReconcilerCrashesMetricFilter", None),
    ),
    (
        "alarms",
        "the exhausted alarm on a metric no one emits",
        setter(f"{R}.ExhaustedAlarm.Properties.MetricName", "Exhaustion"),
    ),
    (
        "alarms",
        "a backlog alarm that pages on one pass",
        setter(f"{R}.BacklogAlarm.Properties.EvaluationPeriods", 1),
    ),
    (
        "alarms",
        "a backlog alarm that adds passes up",
        setter(f"{R}.BacklogAlarm.Properties.Statistic", "Sum"),
    ),
    (
        "alarms",
        "a heartbeat that sums the backlog",
        setter(f"{R}.ReconcilerNotRunningAlarm.Properties.Statistic", "Sum"),
    ),
    (
        "alarms",
        "metrics in another namespace than the alarms'",
        setter(f"{G}.SENDGUARD_METRICS_NAMESPACE", "elsewhere"),
    ),
    (
        "alarms",
        "an EMF alarm with a dimension the metric lacks",
        setter(f"{R}.ExhaustedAlarm.Properties.Dimensions", [{"Name": "Category", "Value": "permanent"}]),
    ),
    (
        "alarms",
        "an alarm on a metric nothing publishes",
        setter(f"{R}.InFlightPastLeaseAlarm.Properties.MetricName", "Overdue"),
    ),
    (
        "alarms",
        "an alarm that notifies no one",
        setter(f"{R}.ExhaustedAlarm.Properties.AlarmActions", []),
    ),
    (
        "alarms",
        "the rate drops its denominator",
        setter(f"{R}.SystemErrorRateAlarm.Properties.Metrics.3.Expression", "errors"),
    ),
    ("functions", "a wrong handler", setter(f"{R}.SubmitFunction.Properties.Handler", "app.handler")),
    ("functions", "a missing route", setter(f"{R}.SubmitFunction.Properties.Events.GetMessage", None)),
    (
        "functions",
        "a submit timeout past API Gateway's",
        setter(f"{R}.SubmitFunction.Properties.Timeout", 60),
    ),
    ("functions", "no schedule", setter(f"{R}.ReconcilerFunction.Properties.Events", {})),
    (
        "functions",
        "unbounded reconciler concurrency",
        setter("Parameters.ReconcilerReservedConcurrency.Default", 0),
    ),
    (
        "functions",
        "logs where no filter looks",
        setter(f"{R}.ReconcilerFunction.Properties.LoggingConfig", None),
    ),
    ("packaging", "code from deploy/", setter("Globals.Function.CodeUri", ".")),
    ("packaging", "a function built without its bytecode", setter(f"{R}.SubmitFunction.Metadata", None)),
    (
        "packaging",
        "a build method the Makefile has no target for",
        setter(f"{R}.ReconcilerFunction.Metadata.BuildMethod", "python3.14"),
    ),
    ("packaging", "no layer", setter("Globals.Function.Layers", [])),
    (
        "packaging",
        "a layer built by SAM's pip, which checks no hash",
        setter(f"{R}.DependenciesLayer.Metadata.BuildMethod", "python3.14"),
    ),
    (
        "packaging",
        "a layer for another architecture",
        setter(f"{R}.DependenciesLayer.Metadata.BuildArchitecture", "x86_64"),
    ),
    (
        "packaging",
        "functions on a runtime the lock was not resolved for",
        also(
            setter("Globals.Function.Runtime", "python3.13"),
            setter(f"{R}.DependenciesLayer.Properties.CompatibleRuntimes", ["python3.13"]),
        ),
    ),
    (
        "packaging",
        "functions and layer on an architecture the lock was not resolved for",
        also(
            setter("Globals.Function.Architectures", ["x86_64"]),
            setter(f"{R}.DependenciesLayer.Metadata.BuildArchitecture", "x86_64"),
        ),
    ),
    (
        "packaging",
        "a layer built from elsewhere than the Makefile's directory",
        setter(f"{R}.DependenciesLayer.Properties.ContentUri", "layer/"),
    ),
    ("environment", "records that expire by default", setter(f"Parameters.{RETENTION}.Default", 30)),
    (
        "least privilege",
        "a function that may run before its grants are attached",
        setter(f"{R}.SubmitFunction.DependsOn", None),
    ),
    (
        "least privilege",
        "a policy attached to a user too",
        setter(f"{R}.ReconcilerPolicy.Properties.Users", ["someone"]),
    ),
    ("table", "no TTL with a retention", setter(f"{R}.Table.Properties.TimeToLiveSpecification", None)),
    (
        "table",
        "a TTL on an attribute the code does not write",
        setter(f"{R}.Table.Properties.TimeToLiveSpecification.Fn::If.1.AttributeName", "expires"),
    ),
    ("table", "the AWS-owned key despite KeyAlias", setter(f"{R}.Table.Properties.SSESpecification", None)),
    (
        "bucket",
        "a KMS key without a bucket key",
        setter(f"{B}.BucketEncryption.ServerSideEncryptionConfiguration.0.Fn::If.1.BucketKeyEnabled", False),
    ),
    (
        "bucket",
        "bodies that outlive their records' retention",
        setter(f"{B}.LifecycleConfiguration.Rules.2.Fn::If.1.ExpirationInDays", 3650),
    ),
    (
        "queue",
        "SQS-managed keys despite KeyAlias",
        setter(f"{R}.DeadLetterQueue.Properties.KmsMasterKeyId", None),
    ),
    (
        "queue",
        "a dead-letter queue that keeps messages no longer than its source",
        setter(f"{R}.DeadLetterQueue.Properties.MessageRetentionPeriod", 1036800),
    ),
    (
        "queue",
        "a source that may keep messages as long as its dead-letter queue",
        setter("Parameters.QueueRetentionSeconds.MaxValue", 1209600),
    ),
    (
        "queue",
        "a dead-letter queue any queue may use",
        setter(f"{R}.DeadLetterQueue.Properties.RedriveAllowPolicy", {"redrivePermission": "allowAll"}),
    ),
    (
        "queue",
        "a dead-letter queue for another queue",
        setter(f"{R}.Queue.Properties.QueueName", {"Fn::Sub": "${AWS::StackName}-other"}),
    ),
    ("queue", "no TLS policy", setter(f"{R}.QueuesPolicy", None)),
    (
        "queue",
        "a TLS policy that leaves the dead-letter queue out",
        setter(f"{R}.QueuesPolicy.Properties.Queues", [{"Ref": "Queue"}]),
    ),
    (
        "queue",
        "a TLS rule that allows",
        setter(f"{R}.QueuesPolicy.Properties.PolicyDocument.Statement.0.Effect", "Allow"),
    ),
    (
        "queue",
        "a TLS rule on the wrong key",
        setter(
            f"{R}.QueuesPolicy.Properties.PolicyDocument.Statement.0.Condition",
            {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
        ),
    ),
    (
        "ready consumer",
        "a consumer on by default",
        setter(f"Parameters.{CONSUMER_MODE}.Default", "transactional"),
    ),
    ("ready consumer", "a table made without the consumer", setter(f"{R}.{CONSUMER_TABLE}.Condition", None)),
    (
        "ready consumer",
        "another handler",
        setter(f"{R}.{CONSUMER}.Properties.Handler", "adapters.aws_lambda.submit"),
    ),
    (
        "ready consumer",
        "no partial batch response",
        setter(f"{R}.{CONSUMER}.Properties.Events.Messages.Properties.FunctionResponseTypes", None),
    ),
    (
        "ready consumer",
        "a mapping on the dead-letter queue",
        setter(
            f"{R}.{CONSUMER}.Properties.Events.Messages.Properties.Queue",
            {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        ),
    ),
    (
        "ready consumer",
        "a timeout past a sixth of the visibility",
        setter(f"{R}.{CONSUMER}.Properties.Timeout", 10),
    ),
    ("ready consumer", "no dead-letter queue", setter(f"{R}.Queue.Properties.RedrivePolicy", None)),
    (
        "ready consumer",
        "a claim that outlives the visibility timeout",
        setter(f"{R}.{CONSUMER}.Properties.Environment.Variables.SENDGUARD_LEASE_MARGIN_SECONDS", None),
    ),
    ("ready consumer", "SQS gives up first", setter("Parameters.ConsumerInboxMaxReceives.Default", 5)),
    (
        "ready consumer",
        "a mode the code refuses",
        setter(f"Parameters.{CONSUMER_MODE}.AllowedValues", ["none", "transactional", "guarded", "fenced"]),
    ),
    (
        "ready consumer",
        "the table not passed to the function",
        setter(f"{R}.{CONSUMER}.Properties.Environment.Variables.SENDGUARD_CONSUMER_TABLE", {"Ref": "Table"}),
    ),
    (
        "ready consumer",
        "a table keyed otherwise",
        setter(f"{R}.{CONSUMER_TABLE}.Properties.KeySchema.0.AttributeName", "message_id"),
    ),
    (
        "ready consumer",
        "a table deleted with the stack",
        setter(f"{R}.{CONSUMER_TABLE}.DeletionPolicy", "Delete"),
    ),
    (
        "ready consumer",
        "no key for the encrypted queue",
        setter(f"{R}.ConsumerPolicy.Properties.PolicyDocument.Statement.2", None),
    ),
    (
        "least privilege",
        "the consumer sends",
        add_statement("ConsumerRole", "sqs:SendMessage", QUEUE_ARN),
    ),
    (
        "least privilege",
        "the consumer writes sendguard's table",
        add_statement("ConsumerRole", "dynamodb:UpdateItem", TABLE_ARN),
    ),
    (
        "least privilege",
        "the consumer puts items",
        add_statement("ConsumerRole", "dynamodb:PutItem", {"Fn::GetAtt": [CONSUMER_TABLE, "Arn"]}),
    ),
    ("packaging", "a consumer built without its bytecode", setter(f"{R}.{CONSUMER}.Metadata", None)),
    (
        "key",
        "the consumer's log group on AWS's key despite KeyAlias",
        setter(f"{R}.ConsumerLogGroup.Properties.KmsKeyId", None),
    ),
    ("key", "a key made by default", setter(f"{R}.DataKey.Condition", None)),
    ("key", "no rotation", setter(f"{R}.DataKey.Properties.EnableKeyRotation", False)),
    ("key", "a key deleted with the stack", setter(f"{R}.DataKey.DeletionPolicy", "Delete")),
    ("key", "a key policy open to anyone", add_key_statement({"AWS": "*"}, ["kms:Decrypt"])),
    (
        "key",
        "the account may grant its use through IAM",
        setter(f"{K}.0.Action", ["kms:*"]),
    ),
    (
        "key",
        "the functions may call KMS directly",
        setter(f"{K}.1.Condition", None),
    ),
    (
        "key",
        "one function missing from the key policy",
        setter(f"{K}.1.Principal.AWS", [{"Fn::GetAtt": ["SubmitRole", "Arn"]}]),
    ),
    (
        "key",
        "DynamoDB for callers of any account",
        setter(f"{K}.2.Condition.StringEquals.kms:CallerAccount", None),
    ),
    ("key", "CloudWatch Logs for any log group", setter(f"{K}.4.Condition", None)),
    (
        "key",
        "a log group on AWS's key despite KeyAlias",
        setter(f"{R}.ReconcilerLogGroup.Properties.KmsKeyId", None),
    ),
    (
        "key",
        "an alias pattern with no way to say none",
        setter("Parameters.KeyAlias.AllowedPattern", "^[a-z]+$"),
    ),
]


@pytest.mark.parametrize(("check", "what", "mutate"), BROKEN, ids=[f"{c}: {w}" for c, w, _ in BROKEN])
def test_each_check_can_fail(
    check: str, what: str, mutate: Callable[[Template], None], template: Template
) -> None:
    broken = copy.deepcopy(template)
    mutate(broken)
    assert broken != template, what
    assert CHECKS[check](broken), f"{check} accepted a template with {what}"


def test_every_check_is_shown_to_fail() -> None:
    assert {check for check, _, _ in BROKEN} == set(CHECKS)


def test_the_guide_check_can_fail(template: Template) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    heading = re.search(r"(?m)^###\s+`?ReconcilerNotRunningAlarm`?\s*$", guide)
    assert heading is not None
    without = guide.replace(heading[0], "### Something else")
    assert any("ReconcilerNotRunningAlarm" in p for p in guide_problems(template, without))
    with_new_alarm = copy.deepcopy(template)
    with_new_alarm["Resources"]["NewAlarm"] = copy.deepcopy(template["Resources"]["ExhaustedAlarm"])
    assert any("NewAlarm" in p for p in guide_problems(with_new_alarm, guide))


def test_the_lock_pins_the_runtime_dependencies_with_hashes() -> None:
    entries = locked(LAYER_LOCK.read_text(encoding="utf-8"))
    assert {"boto3", "botocore", "attrs", "structlog"} <= set(entries)
    assert all(hashes for _, hashes in entries.values())


LOCK_LINE = re.compile(r"^attrs==[^ ]+ \\\n(    --hash=sha256:\w+( \\)?\n)+", re.MULTILINE)


def _broken_locks() -> list[tuple[str, str, str | None, str]]:
    """(what, lock, Makefile, what the check says) texts, each broken in one way; None: the
    repository's Makefile."""
    lock, makefile = LAYER_LOCK.read_text(encoding="utf-8"), (ROOT / "Makefile").read_text(encoding="utf-8")
    attrs_entry = LOCK_LINE.search(lock)
    assert attrs_entry is not None
    unhashed = lock.replace(attrs_entry[0], attrs_entry[0].split(" \\")[0] + "\n")
    assert "--require-hashes" in makefile and "LAYER_PYTHON_VERSION := 3.14" in makefile
    target = "--python-version 3.14 --python-platform aarch64-manylinux2014"
    assert target in lock
    install = "build-DependenciesLayer does not install with"
    return [
        ("a range, not a pin", re.sub(r"^attrs==", "attrs>=", lock, flags=re.M), None, "not pinned"),
        ("a release without its hashes", unhashed, None, "attrs: no hash"),
        ("a dependency the lock forgot", lock.replace(attrs_entry[0], ""), None, "does not pin"),
        (
            "a release outside pyproject's range",
            re.sub(r"^attrs==\S+", "attrs==20.1.0", lock, flags=re.M),
            None,
            "20.1.0 is outside",
        ),
        (
            "a lock resolved for another Python",
            lock.replace("--python-version 3.14", "--python-version 3.11"),
            None,
            f"not resolved for {target}",
        ),
        (
            "a lock resolved for another platform",
            lock.replace("aarch64-manylinux2014", "x86_64-manylinux2014"),
            None,
            f"not resolved for {target}",
        ),
        (
            "a build that checks no hash",
            lock,
            makefile.replace("--require-hashes", ""),
            f"{install} --require-hashes",
        ),
        (
            "a build for the machine's own platform",
            lock,
            makefile.replace("--platform $(LAYER_PIP_PLATFORM)", ""),
            f"{install} --platform",
        ),
        (
            "a build for another Python",
            lock,
            makefile.replace("LAYER_PYTHON_VERSION := 3.14", "LAYER_PYTHON_VERSION := 3.12"),
            "LAYER_PYTHON_VERSION is '3.12'",
        ),
        (
            "no build target",
            lock,
            makefile.replace("build-DependenciesLayer:", "build-Dependencies:"),
            "has no build-DependenciesLayer target",
        ),
    ]


@pytest.mark.parametrize(
    ("what", "lock", "makefile", "said"), _broken_locks(), ids=[w for w, *_ in _broken_locks()]
)
def test_the_lock_check_can_fail(
    template: Template, what: str, lock: str, makefile: str | None, said: str
) -> None:
    problems = packaging_problems(template, lock, makefile)
    assert any(said in p for p in problems), (what, problems)


def test_the_layer_build_installs_only_what_the_lock_hashes(tmp_path: Path) -> None:
    """`make build-DependenciesLayer` (what `sam build` runs): the lock's releases, for the
    runtime's platform, with their bytecode; and a lock whose hash does not match its file stops
    the build before anything is installed. (pip fetches the files from the package index.)"""
    lock = LAYER_LOCK.read_text(encoding="utf-8")

    def build(into: Path, lock_file: Path) -> subprocess.CompletedProcess[str]:
        into.mkdir()
        command = ["make", "-s", "-C", str(ROOT), "build-DependenciesLayer", f"ARTIFACTS_DIR={into}"]
        command += [f"LAYER_LOCK={lock_file}", f"LAMBDA_PYTHON={sys.executable}", f"PYTHON={sys.executable}"]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    built = build(tmp_path / "layer", LAYER_LOCK)
    assert built.returncode == 0, built.stderr
    installed = {
        (p.name.split("-")[0].lower().replace("_", "-"), p.name.removesuffix(".dist-info").split("-")[1])
        for p in (tmp_path / "layer" / "python").glob("*.dist-info")
    }
    assert installed == {(name, req.partition("==")[2]) for name, (req, _) in locked(lock).items()}
    assert list((tmp_path / "layer" / "python" / "boto3").glob("__pycache__/*.pyc"))

    attrs_hash = locked(lock)["attrs"][1][0].removeprefix("sha256:")
    tampered = tmp_path / "tampered.txt"
    tampered.write_text(lock.replace(attrs_hash, "0" * len(attrs_hash)), encoding="utf-8")
    refused = build(tmp_path / "refused", tampered)
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert not list((tmp_path / "refused").rglob("*.dist-info"))


# ---- examples/orders/template.yaml: what sendguard adds to a team's stack --------------------------

ORDERS_TEMPLATE = ROOT / "examples" / "orders" / "template.yaml"
# What each function of the orders stack may do, on which resource: sendguard's needs and no more.
ORDERS_GRANTS = {
    "OrdersRole": {
        ("dynamodb:UpdateItem", "OrdersTable"),
        ("dynamodb:GetItem", "OrdersTable"),
        ("dynamodb:PutItem", "OrdersTable"),
        ("sqs:SendMessage", "OrderEvents"),
        ("logs:CreateLogStream", "OrdersLogGroup"),
        ("logs:PutLogEvents", "OrdersLogGroup"),
    },
    "ReconcilerRole": {
        ("dynamodb:Query", "OrdersTable/index/attention"),
        ("dynamodb:UpdateItem", "OrdersTable"),
        ("dynamodb:BatchGetItem", "OrdersTable"),
        ("sqs:SendMessage", "OrderEvents"),
        ("logs:CreateLogStream", "ReconcilerLogGroup"),
        ("logs:PutLogEvents", "ReconcilerLogGroup"),
    },
    # The billing consumer on sendguard's Inbox: its record and its effect, the queue, its logs.
    "BillingRole": {
        ("dynamodb:GetItem", "BillingTable"),
        ("dynamodb:UpdateItem", "BillingTable"),
        ("dynamodb:PutItem", "BillingTable"),
        ("sqs:ReceiveMessage", "OrderEvents"),
        ("sqs:DeleteMessage", "OrderEvents"),
        ("sqs:GetQueueAttributes", "OrderEvents"),
        ("logs:CreateLogStream", "BillingLogGroup"),
        ("logs:PutLogEvents", "BillingLogGroup"),
    },
}


def _resource_name(expr: Any) -> str:
    if isinstance(expr, dict) and "Fn::GetAtt" in expr:
        return str(listed(expr["Fn::GetAtt"])[0]).split(".")[0]
    if isinstance(expr, dict) and "Fn::Sub" in expr:
        return str(expr["Fn::Sub"]).replace("${", "").replace(".Arn}", "")
    return str(expr)


def orders_problems(t: Template) -> list[str]:
    """The index sendguard's reconciler reads, its schedule, and exactly the grants sendguard needs."""
    problems = []
    table = props(t, "OrdersTable")
    if ATTENTION_INDEX not in table.get("GlobalSecondaryIndexes", []):
        problems.append("OrdersTable lacks sendguard's attention index")
    defined = {(a["AttributeName"], a["AttributeType"]) for a in table.get("AttributeDefinitions", [])}
    if not {("sg_attention", "S"), ("sg_attention_at", "N")} <= defined:
        problems.append(f"attribute definitions {sorted(defined)} lack the index keys")
    schedules = [
        e
        for e in function_props(t, "OrdersReconciler").get("Events", {}).values()
        if e.get("Type") == "Schedule"
    ]
    if [e["Properties"].get("Schedule") for e in schedules] != ["rate(1 minute)"]:
        problems.append("the reconciler does not run every minute")
    layer = t["Resources"].get("DependenciesLayer", {})
    content = layer.get("Properties", {}).get("ContentUri")
    if (layer.get("Metadata") or {}).get("BuildMethod") != "makefile" or not (
        isinstance(content, str) and (ORDERS_TEMPLATE.parent / content).resolve() == ROOT
    ):
        problems.append("DependenciesLayer is not built by the repository's Makefile from the hashed lock")
    route = props(t, "OrdersApi").get("DefaultRouteSettings", {})
    limits = [route.get("ThrottlingRateLimit"), route.get("ThrottlingBurstLimit")]
    if not all(isinstance(limit, int) and limit > 0 for limit in limits):
        problems.append(f"OrdersApi: no throttling (rate, burst {limits}): a runaway caller spends the table")
    queue_policies = [p_["Properties"] for p_ in resources(t, "AWS::SQS::QueuePolicy").values()]
    if not any(
        _denies_plain_http(s_, "sqs:*", [{"Fn::GetAtt": ["OrderEvents", "Arn"]}])
        for p_ in queue_policies
        if {"Ref": "OrderEvents"} in p_.get("Queues", [])
        for s_ in statements(p_.get("PolicyDocument", {}))
    ):
        problems.append("OrderEvents: no queue policy denies every request without TLS")
    for role, expected in ORDERS_GRANTS.items():
        granted = {
            (action, _resource_name(resource))
            for policy in props(t, role).get("Policies", [])
            for statement in listed(policy["PolicyDocument"]["Statement"])
            for action in listed(statement["Action"])
            for resource in listed(statement["Resource"])
        }
        if granted != expected:
            problems.append(f"{role} grants {sorted(granted ^ expected)} beyond or short of what it needs")
    return problems


def consumer_problems(t: Template) -> list[str]:
    """The billing consumer (docs/inbox.md's settings): its event source mapping reads the partial
    batch response, the queue hides a message at least 6 x the function's timeout, and a message that
    keeps failing goes to a dead-letter queue only after the inbox has given it up."""
    problems = []
    function = function_props(t, "BillingFunction")
    mappings = [e["Properties"] for e in function.get("Events", {}).values() if e.get("Type") == "SQS"]
    if [m.get("Queue") for m in mappings] != [{"Fn::GetAtt": ["OrderEvents", "Arn"]}]:
        problems.append("BillingFunction is not fed by OrderEvents")
    if any(m.get("FunctionResponseTypes") != ["ReportBatchItemFailures"] for m in mappings):
        problems.append("the event source mapping ignores batchItemFailures (ReportBatchItemFailures)")
    queue = props(t, "OrderEvents")
    if int(queue.get("VisibilityTimeout", 30)) < 6 * int(function["Timeout"]):
        problems.append("OrderEvents' visibility timeout is under 6 x the consumer's timeout")
    redrive = queue.get("RedrivePolicy", {})
    receives = int(function.get("Environment", {}).get("Variables", {}).get("BILLING_MAX_RECEIVES", 3))
    if redrive.get("deadLetterTargetArn") != {"Fn::GetAtt": ["OrderEventsDeadLetters", "Arn"]}:
        problems.append("OrderEvents has no dead-letter queue")
    elif int(redrive.get("maxReceiveCount", 0)) <= receives:
        problems.append("SQS moves a message before the inbox gives it up (maxReceiveCount <= max_receives)")
    return problems


def test_the_orders_template_passes_cfn_lint_in_every_region() -> None:
    assert lint_problems(ORDERS_TEMPLATE.read_text(encoding="utf-8"), REGIONS) == []


def test_the_orders_template_adds_what_sendguard_needs() -> None:
    assert orders_problems(load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))) == []


def test_the_orders_templates_consumer_is_set_as_the_inbox_needs() -> None:
    assert consumer_problems(load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda t: t["Resources"]["BillingFunction"]["Properties"]["Events"]["OrderEvents"]["Properties"].pop(
            "FunctionResponseTypes"
        ),
        lambda t: t["Resources"]["OrderEvents"]["Properties"].update(VisibilityTimeout=60),
        lambda t: t["Resources"]["OrderEvents"]["Properties"].pop("RedrivePolicy"),
        lambda t: t["Resources"]["OrderEvents"]["Properties"]["RedrivePolicy"].update(maxReceiveCount=2),
    ],
    ids=["no partial batch response", "short visibility", "no DLQ", "DLQ before the inbox gives up"],
)
def test_the_consumer_check_can_fail(break_it: Any) -> None:
    broken = load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))
    break_it(broken)
    assert consumer_problems(broken) != []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda t: t["Resources"]["OrdersTable"]["Properties"].pop("GlobalSecondaryIndexes"),
        lambda t: t["Resources"]["OrdersReconciler"]["Properties"].pop("Events"),
        lambda t: t["Resources"]["ReconcilerRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"
        ].pop(0),
        lambda t: t["Resources"]["OrdersRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0][
            "Action"
        ].append("dynamodb:DeleteItem"),
        lambda t: t["Resources"]["DependenciesLayer"]["Metadata"].update(BuildMethod="python3.14"),
        lambda t: t["Resources"]["OrdersApi"]["Properties"].pop("DefaultRouteSettings"),
        lambda t: t["Resources"]["OrdersApi"]["Properties"]["DefaultRouteSettings"].pop(
            "ThrottlingBurstLimit"
        ),
        lambda t: t["Resources"].pop("OrderEventsPolicy"),
        lambda t: t["Resources"]["OrderEventsPolicy"]["Properties"]["PolicyDocument"]["Statement"][0].update(
            Effect="Allow"
        ),
        lambda t: t["Resources"]["BillingRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][
            0
        ]["Action"].append("dynamodb:Scan"),
    ],
    ids=[
        "no index",
        "no schedule",
        "reconciler cannot query",
        "orders may delete",
        "an unchecked layer",
        "no throttling",
        "no burst limit",
        "no TLS policy",
        "a TLS rule that allows",
        "billing may scan",
    ],
)
def test_the_orders_check_can_fail(break_it: Any) -> None:
    broken = load(ORDERS_TEMPLATE.read_text(encoding="utf-8"))
    break_it(broken)
    assert orders_problems(broken) != []


# ---- callers kept apart, and what a pass could not do --------------------------------------------


def test_the_api_access_log_names_the_caller_the_request_and_the_answer(template: Template) -> None:
    api = resources(template)["HttpApi"]["Properties"]
    settings = api["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(settings["Format"].replace("\n", "").replace(" ", ""))
    assert fields["caller"] == "$context.identity.userArn" and fields["requestId"] == "$context.requestId"
    assert fields["status"] == "$context.status" and fields["routeKey"] == "$context.routeKey"
    group = resources(template)["ApiAccessLogGroup"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": "/sendguard/${AWS::StackName}/api"}
    assert "RetentionInDays" in group and "KmsKeyId" in group
    assert "log-group:/sendguard/${AWS::StackName}/api" in json.dumps(resources(template)["DataKey"])
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"  # who signed: what KeyScope=caller scopes by


def test_key_scope_is_a_parameter_of_the_functions(template: Template) -> None:
    parameter = template["Parameters"]["KeyScope"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("shared", ["shared", "caller"])
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SENDGUARD_KEY_SCOPE"] == {"Ref": "KeyScope"}


@pytest.mark.parametrize(
    ("alarm", "metric"),
    [("UnreadableRecordsAlarm", "ReconcilerFailedReads"), ("OtherQueueRecordsAlarm", "ReconcilerLeft")],
)
def test_a_pass_that_leaves_records_waiting_raises_an_alarm(
    template: Template, alarm: str, metric: str
) -> None:
    from adapters.runtime.metrics import PASS_METRICS

    properties = resources(template, "AWS::CloudWatch::Alarm")[alarm]["Properties"]
    assert properties["MetricName"] == metric and metric in PASS_METRICS
    assert (properties["Statistic"], properties["Threshold"], properties["DatapointsToAlarm"]) == (
        "Minimum",
        0,
        3,
    )
    assert properties["Namespace"] == {"Fn::Sub": "sendguard/${AWS::StackName}"}


# ---- SnapStart (issue 26, item 1) ------------------------------------------------------------------


def snapstart_problems(t: Template) -> list[str]:
    """SnapStart is a parameter, off by default, that turns it on for SubmitFunction's published
    versions: the function publishes versions behind an alias (SnapStart never applies to $LATEST),
    and its runtime has SnapStart (Python 3.12 and later)."""
    problems = []
    parameter = t.get("Parameters", {}).get("SnapStart", {})
    if parameter.get("Default") != "None":
        problems.append(f"SnapStart's default is {parameter.get('Default')!r}, not None (off)")
    if sorted(parameter.get("AllowedValues", [])) != ["None", "PublishedVersions"]:
        problems.append(f"SnapStart admits {parameter.get('AllowedValues')!r}")
    function = function_props(t, SUBMIT)
    if function.get("SnapStart") != {"ApplyOn": {"Ref": "SnapStart"}}:
        problems.append(f"{SUBMIT}'s SnapStart is {function.get('SnapStart')!r}, not the parameter")
    alias = function.get("AutoPublishAlias")
    if not isinstance(alias, str) or not alias:
        problems.append(f"{SUBMIT} publishes no version behind an alias: SnapStart would never apply")
    runtime = re.fullmatch(r"python3\.(\d+)", str(function.get("Runtime")))
    if runtime is None or int(runtime.group(1)) < 12:
        problems.append(f"{SUBMIT}'s runtime {function.get('Runtime')!r} has no SnapStart (3.12+)")
    return problems


def test_snapstart_is_a_parameter_off_by_default_for_the_submit_function(template: Template) -> None:
    assert snapstart_problems(template) == []
    assert parameter_default(template, function_props(template, SUBMIT)["SnapStart"]["ApplyOn"]) == "None"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t["Parameters"]["SnapStart"].update(Default="PublishedVersions"), "default"),
        (lambda t: t["Resources"][SUBMIT]["Properties"].pop("AutoPublishAlias"), "no version"),
        (
            lambda t: t["Resources"][SUBMIT]["Properties"].update(SnapStart={"ApplyOn": "PublishedVersions"}),
            "not the parameter",
        ),
        (lambda t: t["Resources"][SUBMIT]["Properties"].update(Runtime="python3.11"), "has no SnapStart"),
    ],
)
def test_snapstart_problems_are_caught(
    template: Template, mutate: Callable[[Template], object], expected: str
) -> None:
    mutate(template)
    problems = snapstart_problems(template)
    assert len(problems) == 1 and expected in problems[0], problems
