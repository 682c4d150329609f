"""Hostile stack config: every string setting is refused by infra.config.parse (a
ConfigError naming that key) or, when accepted, reaches the generated shell only as one
properly quoted word.

The shell the program generates: the user_data `exec` line (infra.bootstrap.render_user_data)
and the remote command strings (infra.commands builders, as infra/remote.py calls them).
"Properly quoted" is checked two ways: `shlex.split` gives back exactly the argument list,
and the string is made only of words bash cannot expand: shell-safe characters,
'single-quoted' text, and shlex's "'" for a quote (no unquoted $ ` ; | & < > ( ) newline).
"""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from infra import bootstrap, commands, preflight
from infra import config as infra_config
from infra.instance import deploy_spec
from tests.pulumi_mocks import FAKE_IP, FAKE_PRIVATE_KEY, run_stack

SCHEMA = infra_config.load_schema()
PUBLIC_IP = "203.0.113.9"
KEYS = ("ref", "imageTag", "repoUrl", "publicCidrs", "sshCidrs", "sshPublicKey", "keyName", "imageRegistry",
        "ami", "vpcId", "subnetId", "expiresAt")
# Settings that reach a command line, and the flag of deploy.sh that carries them.
FLAG_OF = {"ref": "--ref", "imageTag": "--tag", "repoUrl": "--repo", "imageRegistry": "--registry"}
BASE = {"sshCidrs": "198.51.100.7/32"}
# What each key needs next to it so that it is the only thing under test.
COMPANIONS = {
    "sshPublicKey": {"sshPrivateKey": FAKE_PRIVATE_KEY},
    "keyName": {"sshPrivateKey": FAKE_PRIVATE_KEY},
    "subnetId": {"vpcId": "vpc-0123456789abcdef0"},
}
VALID = {
    "ref": ["main", "v1.1.0", "pr-42", "feature/scan-ui", "sha-" + "a" * 40],
    "imageTag": ["v1.1.0", "pr-9-amd64", "latest"],
    "repoUrl": ["https://github.com/SiriusScan/Sirius.git", "file:///srv/sirius.git"],
    "publicCidrs": ['["0.0.0.0/0"]', "10.0.0.0/8", "2001:db8::/32"],
    "sshCidrs": ["198.51.100.7/32", "auto"],
    "sshPublicKey": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@laptop"],
    "keyName": ["team-key"],
    "imageRegistry": ["ghcr.io/siriusscan", "127.0.0.1:5000/siriusscan"],
    "ami": ["ami-0123456789abcdef0"],
    "vpcId": ["vpc-0123456789abcdef0"],
    "subnetId": ["subnet-0123456789abcdef0"],
    "expiresAt": ["2026-12-01T02:00:00Z"],
}
INJECTIONS = [
    "$(touch /tmp/x)", "`touch /tmp/x`", ";touch /tmp/x", "; reboot", "\nreboot", "\n", "-x", "--help", "-",
    "' ; touch /tmp/x ; '", '"$(id)"', "${IFS}id", "|id", "&& id", "& id", "> /tmp/x", "< /etc/passwd", "\\", "\x00",
    "$HOME", "*", "~root", "#", "!!", "..", "a b", "\t", "\r", "é", "\u202e",
]
METACHARACTERS = list(";|&$()`'\"\\\n\t <>*?[]{}~#!=%^,:@/.-") + ["\x00", "\r"]

# Sirius images as the program runs them without a registry preflight (preflight: false).
IMAGE_TAGS_FROM = preflight.SIRIUS_IMAGES


def hostile_strings(key: str) -> st.SearchStrategy[str]:
    meta_text = st.text(alphabet=st.sampled_from(METACHARACTERS) | st.characters(codec="ascii"), max_size=40)
    fragment = st.sampled_from(INJECTIONS) | meta_text
    spliced = st.builds(
        lambda valid, bad, where: {"pre": bad + valid, "post": valid + bad, "mid": valid[:3] + bad + valid[3:]}[where],
        st.sampled_from(VALID[key]), fragment, st.sampled_from(["pre", "post", "mid"]),
    )
    return st.one_of(st.sampled_from(INJECTIONS), meta_text, st.text(max_size=60), spliced)


# --- what is generated from a config --------------------------------------------


def generated_commands(parsed: infra_config.DemoConfig) -> tuple[commands.DeploySpec, list[tuple[str, list[list[str]]]]]:
    """(spec, [(shell string, argv lists it must split into)]) of everything the program runs on a host."""
    image_tags = {image: parsed.image_tag for image in IMAGE_TAGS_FROM}
    if parsed.image_tag != "latest":
        image_tags["sirius-ui"] = "latest"  # a preflight fallback: exercises --image-tag
    spec = deploy_spec(parsed, FAKE_IP, image_tags)
    user_data = bootstrap.render_user_data(spec)
    template = bootstrap.TEMPLATE.read_text()
    head = template.split("exec @@BOOTSTRAP_COMMAND@@")[0].replace("@@HOST_SCRIPTS@@", bootstrap.encoded_archive().rstrip("\n"))
    assert user_data.startswith(head + "exec "), "the user data changed outside the exec line"
    exec_line = user_data[len(head) + len("exec "):]
    assert exec_line.endswith("\n") and exec_line.count("\n") == 1, "the exec line spans lines"
    built = [
        (exec_line.rstrip("\n"), [commands.bootstrap_argv(spec)]),
        (commands.shell(commands.sudo(commands.deploy_argv(spec))), [commands.sudo(commands.deploy_argv(spec))]),
        (commands.shell(commands.sudo(commands.health_argv(spec))), [commands.sudo(commands.health_argv(spec))]),
        (commands.shell(commands.wait_boot_argv(spec, 1500)), [commands.wait_boot_argv(spec, 1500)]),
        (commands.shell(commands.read_admin_password(spec)), [commands.read_admin_password(spec)]),
        (commands.install_engine(), [["base64", "-d"], ["sudo", "tar", "-xzf", "-", "-C", commands.HOST_BIN]]),
    ]
    return spec, built


# A word bash cannot expand or split: shlex.quote's output, word by word.
_SAFE_WORD = re.compile(r"(?:[A-Za-z0-9_@%+=:,./-]+|'[^']*'|\"'\")+")


def assert_quoted(command: str, argvs: list[list[str]]) -> None:
    parts = command.split(" | ")
    assert len(parts) == len(argvs), command
    for part, argv in zip(parts, argvs, strict=True):
        assert shlex.split(part) == argv, part
        for word in part.split(" "):
            assert _SAFE_WORD.fullmatch(word), f"unquoted shell syntax in {word!r} of {part!r}"
        tokens = list(shlex.shlex(part, posix=True, punctuation_chars=True))
        assert not [t for t in tokens if t and set(t) <= set("();<>|&")], part


_BASELINE_SPEC, _ = generated_commands(infra_config.parse(BASE, stack="demo", schema=SCHEMA))


def check(key: str, value: str) -> None:
    raw = {**BASE, **COMPANIONS.get(key, {}), key: value}
    secret = {"sshPrivateKey"} if "sshPrivateKey" in raw else set()
    try:
        parsed = infra_config.parse(raw, stack="demo", secret_keys=secret, lookup_public_ip=lambda: PUBLIC_IP,
                                    schema=SCHEMA)
    except infra_config.ConfigError as err:
        if key in ("sshPublicKey", "keyName") and not value.strip():
            # Empty means unset: then the private key next to it has no partner.
            assert err.keys == ["sshPrivateKey"], err
        else:
            assert key in err.keys, err
            assert set(err.keys) == {key}, f"other keys blamed for {key}={value!r}: {err.keys}"
        return
    spec, built = generated_commands(parsed)
    for command, argvs in built:
        assert_quoted(command, argvs)
    argv = commands.deploy_argv(spec)
    if key in FLAG_OF:
        # The value itself, one word, right after its flag.
        expected = parsed.image_tag if key == "imageTag" and value == "" else value  # empty: derived from ref
        assert argv[argv.index(FLAG_OF[key]) + 1] == expected
        if key == "ref":
            assert argv[argv.index("--git-ref") + 1] == parsed.git_ref
    else:
        # Settings that never reach a host command leave every command as it was.
        assert spec == _BASELINE_SPEC, key


@pytest.mark.parametrize("key", KEYS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_values_are_refused_or_quoted(key, data):
    check(key, data.draw(hostile_strings(key), label=key))


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize("key", KEYS)
def test_targeted_injections(key, injection):
    for value in (injection, injection + VALID[key][0], VALID[key][0] + injection):
        check(key, value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("ref", "$(touch /tmp/x)"), ("ref", "`id`"), ("ref", "main;reboot"), ("ref", "main\nreboot"), ("ref", "-main"),
     ("ref", "--upload-pack=touch /tmp/x"), ("imageTag", "$(id)"), ("imageTag", "-x"), ("imageTag", "v1;id"),
     ("repoUrl", "ext::sh -c touch% /tmp/x"), ("repoUrl", "https://github.com/x/$(id).git"),
     ("repoUrl", "-uhttps://github.com/x/y.git"), ("repoUrl", "file:///srv/`id`"),
     ("imageRegistry", "ghcr.io/$(id)"), ("imageRegistry", "-ghcr.io/x"), ("imageRegistry", 'ghcr.io/x"\n  y: z'),
     ("publicCidrs", "0.0.0.0/0;id"), ("sshCidrs", "$(curl x)/32"), ("ami", "ami-0123456789abcdef0;id"),
     ("vpcId", "`id`"), ("subnetId", "-subnet-0123456789abcdef0"), ("expiresAt", "2026-12-01T02:00:00Z\nid")],
)
def test_command_reaching_injections_are_refused_naming_the_key(key, value):
    with pytest.raises(infra_config.ConfigError) as caught:
        infra_config.parse({**BASE, **COMPANIONS.get(key, {}), key: value}, stack="demo", schema=SCHEMA,
                           secret_keys={"sshPrivateKey"})
    assert caught.value.keys == [key]


@given(ref=st.sampled_from(VALID["ref"]), tag=st.sampled_from(VALID["imageTag"] + [""]),
       registry=st.sampled_from(VALID["imageRegistry"]), repo=st.sampled_from(VALID["repoUrl"]))
@example(ref="pr-42", tag="", registry="ghcr.io/siriusscan", repo="file:///srv/sirius.git")
@settings(max_examples=40, deadline=None)
def test_valid_values_reach_the_commands_as_themselves(ref, tag, registry, repo):
    parsed = infra_config.parse({**BASE, "ref": ref, "imageTag": tag, "imageRegistry": registry, "repoUrl": repo},
                                stack="demo", schema=SCHEMA)
    spec, built = generated_commands(parsed)
    for command, argvs in built:
        assert_quoted(command, argvs)
    argv = commands.bootstrap_argv(spec)
    assert [argv[argv.index(f) + 1] for f in ("--ref", "--repo", "--registry")] == [ref, repo, registry]


# --- accepted hostile-looking values that are not shell: they stay out of every command ---

ACCEPTED_ODDITIES = [
    ({"keyName": "$(touch /tmp/x); `id` | x", "sshPrivateKey": FAKE_PRIVATE_KEY}, "$(touch /tmp/x); `id` | x"),
    ({"keyName": "-rf --help", "sshPrivateKey": FAKE_PRIVATE_KEY}, "-rf --help"),
    ({"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake $(touch /tmp/x);`id`",
      "sshPrivateKey": FAKE_PRIVATE_KEY}, "$(touch /tmp/x);`id`"),
]


@pytest.mark.parametrize(("config", "needle"), ACCEPTED_ODDITIES)
def test_accepted_oddities_never_reach_a_command(config, needle):
    run = run_stack({**BASE, **config}, secret_keys=("sshPrivateKey",))
    instance = run.one("aws:ec2/instance:Instance")
    assert needle not in instance.inputs["userData"]
    for command in run.of_type("command:remote:Command"):
        for field in ("create", "stdin", "triggers"):
            assert needle not in repr(command.inputs.get(field)), (command.name, field)
    holders = {r.type for r in run.resources if needle in repr(r.inputs)}
    assert holders <= {"aws:ec2/instance:Instance", "aws:ec2/keyPair:KeyPair"}, holders


def test_program_commands_are_quoted_for_every_ref_shape():
    """The strings the program really registers, not only the builders."""
    for ref, tag in (("demo", ""), ("v1.1.0", ""), ("pr-42", ""), ("feature/scan-ui", "pr-9-amd64"), ("sha-" + "b" * 40, "")):
        run = run_stack({**BASE, "ref": ref, "imageTag": tag})
        exec_line = run.one("aws:ec2/instance:Instance").inputs["userData"].rstrip("\n").splitlines()[-1]
        assert exec_line.startswith("exec ")
        argv = shlex.split(exec_line[len("exec "):])
        assert_quoted(exec_line[len("exec "):], [argv])
        assert argv[argv.index("--ref") + 1] == ref
        for command in run.of_type("command:remote:Command"):
            create = command.inputs["create"]
            assert_quoted(create, [shlex.split(p) for p in create.split(" | ")])


# --- a bug found here: overlong values pass the config and fail only in `pulumi up` -------

USER_DATA_HEADROOM = bootstrap.USER_DATA_LIMIT - len(
    bootstrap.render_user_data(_BASELINE_SPEC).encode())


@pytest.mark.parametrize("key", ["repoUrl", "imageRegistry"])
def test_overlong_values_are_refused_by_the_config(key):
    padding = "a" * (USER_DATA_HEADROOM + 100)
    value = {"repoUrl": f"https://github.com/{padding}/Sirius.git", "imageRegistry": f"ghcr.io/{padding}"}[key]
    check(key, value)
