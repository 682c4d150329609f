"""Compose files of the fixture Sirius repository (see ``engine.make_sirius_repo``).

Written by us from the facts of upstream's files (github.com/SiriusScan/Sirius, read
at main 823a80f6, whose ``docker-compose.yaml`` is also v1.1.0's; v1.0.0 221b8001;
v0.4.1 92e1f029; branch ``demo`` af23d1eb), not copied from them.  What a deploy
engine depends on is reproduced literally: project and network name ``sirius``;
image names ``<registry>/siriusscan/<image>:${IMAGE_TAG:-latest}`` (only the
registry host differs: the tests' registry on 127.0.0.1); ``pull_policy`` and
``restart``; every ``${VAR}`` interpolation, the required ``${VAR:?...}`` ones with
upstream's messages; the health-check commands as upstream writes them, with
upstream's intervals, timeouts and retries and no ``start_period``; ``depends_on``
conditions; the ``sirius-migrate`` one-shot; the API-key secret; ports published on
all addresses; volumes; resource limits and reservations; the rabbitmq.conf bind
mount; ``docker-compose.build.yaml`` for the local-build fallback.

``compose_yaml(release, registry)`` gives the file of one release of the fixture:

``main``    upstream main / v1.1.0: images for all seven services, the key-file
            secret, ``SIRIUS_API_KEY_FILE`` interpolated into sirius-engine's check,
            required variables, ``sirius-migrate``.
``v1.0.0``  rabbitmq/postgres/valkey built from source (``build:``, no ``image:``);
            ui/api/engine images that require the old ``SIRIUS_API_KEY`` variable;
            no secret, no migrate.
``demo``    the stale ``demo`` branch (2025-11): infra built from source, no key
            variable at all, no secret, no migrate, defaults for every password,
            no valkey health check.
``v0.4.1``  every service built from source: no ``image:`` anywhere.
"""

from __future__ import annotations

RELEASES = ("main", "v1.0.0", "demo", "v0.4.1")

#: Where compose mounts the API-key secret (and what upstream's installer writes
#: as SIRIUS_API_KEY_FILE into .env).
API_KEY_FILE = "/run/secrets/sirius_api_key"

#: Upstream's tail of every ``${VAR:?...}`` message in the main compose file.
_INSTALLER = ("Run installer first using docker compose -f docker-compose.installer.yaml "
              "run --rm sirius-installer")

#: Upstream sirius-engine check on main/v1.1.0 (compose interpolates the variable).
ENGINE_CHECK_MAIN = ('command -v psql >/dev/null && command -v curl >/dev/null && '
                     '[ -r "${SIRIUS_API_KEY_FILE:-}" ] && echo > /dev/tcp/127.0.0.1/50051')
ENGINE_CHECK_V1 = "echo > /dev/tcp/127.0.0.1/50051"

#: Healthcheck (interval, timeout, retries) per service, as upstream has them.
HEALTH_TIMING: dict[str, tuple[str, str, int]] = {
    "sirius-rabbitmq": ("30s", "15s", 5),
    "sirius-postgres": ("10s", "5s", 5),
    "sirius-valkey": ("10s", "5s", 5),
    "sirius-ui": ("30s", "10s", 3),
    "sirius-api": ("30s", "10s", 3),
    "sirius-engine": ("30s", "10s", 3),
}

#: Host ports each service publishes ("PORT:PORT", on every address).
PUBLISHED_PORTS: dict[str, tuple[int, ...]] = {
    "sirius-rabbitmq": (5672, 15672),
    "sirius-postgres": (5432,),
    "sirius-valkey": (6379,),
    "sirius-ui": (3000,),
    "sirius-api": (9001,),
    "sirius-engine": (5174, 50051),
}

#: Build targets named in upstream's docker-compose.build.yaml.
BUILD_TARGETS = {"sirius-ui": "production", "sirius-api": "runner", "sirius-engine": "runtime"}

#: GO_API_COMMIT_SHA build argument of sirius-api in docker-compose.build.yaml
#: (main bumped it after v1.1.0; the compose file itself is unchanged).
GO_API_COMMIT = {"v1.1.0": "c7c42d4444c8637140ab0e29743184fface5b12f",
                 "main": "ebd42f4239ec2d0c99e3e7c463a5fc181f57737f"}


def _required(var: str, service: str | None) -> str:
    where = f" for {service}" if service else ""
    return f"${{{var}:?{var} is required{where}. {_INSTALLER}}}"


def _api_key_env(release: str, service: str) -> list[str]:
    """How `service` gets the API key: the key file since v1.1.0, v1.0.0's required variable."""
    if release == "main":
        return ["SIRIUS_API_KEY_FILE=${SIRIUS_API_KEY_FILE:-" + API_KEY_FILE + "}"]
    if release == "v1.0.0":
        return [f"SIRIUS_API_KEY=${{SIRIUS_API_KEY:?SIRIUS_API_KEY is required for {service}}}"]
    return []


def _resources(limit_mem: str, limit_cpus: str, res_mem: str, res_cpus: str) -> str:
    return ("    deploy:\n      resources:\n        limits:\n"
            f"          memory: {limit_mem}\n          cpus: \"{limit_cpus}\"\n"
            "        reservations:\n"
            f"          memory: {res_mem}\n          cpus: \"{res_cpus}\"\n")


def _healthcheck(service: str, test: str) -> str:
    interval, timeout, retries = HEALTH_TIMING[service]
    return (f"    healthcheck:\n      test: {test}\n      interval: {interval}\n"
            f"      timeout: {timeout}\n      retries: {retries}\n")


def _depends(*pairs: tuple[str, str]) -> str:
    out = "    depends_on:\n"
    for name, cond in pairs:
        out += f"      {name}:\n        condition: {cond}\n"
    return out


def _head(service: str, release: str, registry: str, image: str | None = None,
          restart_first: bool = True) -> str:
    """image/build, pull_policy, restart, container_name and hostname lines."""
    built_infra = service in ("sirius-rabbitmq", "sirius-postgres", "sirius-valkey")
    built = release == "v0.4.1" or (release in ("v1.0.0", "demo") and built_infra)
    if built:
        if release == "v0.4.1" and not built_infra:
            src = f"    build:\n      context: ./{service}/\n"
            if service == "sirius-ui":
                src += ("      dockerfile: Dockerfile\n      args:\n"
                        '        NEXT_PUBLIC_CLIENTVAR: "clientvar"\n        SKIP_ENV_VALIDATION: "1"\n')
            src += f"      target: {BUILD_TARGETS[service]}\n"
        else:
            src = f"    build:\n      context: ./{service}\n      dockerfile: Dockerfile\n"
    else:
        policy = "${SIRIUS_IMAGE_PULL_POLICY:-always}" if release == "main" else "always"
        src = (f"    image: {registry}/siriusscan/{image or service}:${{IMAGE_TAG:-latest}}\n"
               f"    pull_policy: {policy}\n")
    names = f"    container_name: {service}\n    hostname: {service}\n"
    restart = "    restart: unless-stopped\n"
    return src + (restart + names if restart_first or built else names + restart)


def _ports(service: str) -> str:
    out = "    ports:\n"
    for p in PUBLISHED_PORTS[service]:
        out += f'      - "{p}:{p}"' + (" # Agent gRPC" if p == 50051 else "") + "\n"
    return out


def _infra(release: str, registry: str) -> str:
    main = release == "main"
    valkey_env = ("      VALKEY_HOST: ${VALKEY_HOST:-sirius-valkey}\n"
                  "      VALKEY_PORT: ${VALKEY_PORT:-6379}\n")
    pg_password = _required("POSTGRES_PASSWORD", None) if main else "${POSTGRES_PASSWORD:-postgres}"
    pg_check = ('["CMD", "/usr/local/bin/pg-healthcheck.sh"]' if main
                else '["CMD-SHELL", "pg_isready -U postgres"]')
    return (
        "  sirius-rabbitmq:\n" + _head("sirius-rabbitmq", release, registry)
        + "    environment:\n" + valkey_env + _ports("sirius-rabbitmq")
        + "    volumes:\n      - ./rabbitmq/rabbitmq.conf:/etc/rabbitmq/rabbitmq.conf:ro\n"
          "      - rabbitmq_data:/var/lib/rabbitmq\n"
        + _healthcheck("sirius-rabbitmq", '["CMD", "rabbitmqctl", "status"]')
        + _resources("512M", "0.5", "256M", "0.25") + "\n"
        + "  sirius-postgres:\n" + _head("sirius-postgres", release, registry)
        + "    environment:\n      POSTGRES_USER: ${POSTGRES_USER:-postgres}\n"
        + f"      POSTGRES_PASSWORD: {pg_password}\n"
          "      POSTGRES_DB: ${POSTGRES_DB:-sirius}\n" + valkey_env
        + _ports("sirius-postgres")
        + "    volumes:\n      - postgres_data:/var/lib/postgresql/data\n"
        + _healthcheck("sirius-postgres", pg_check)
        + _resources("1G", "0.5", "512M", "0.25") + "\n"
        + "  sirius-valkey:\n" + _head("sirius-valkey", release, registry)
        + "    environment:\n" + valkey_env + _ports("sirius-valkey")
        + "    volumes:\n      - valkey_data:/data\n"
        + (_healthcheck("sirius-valkey", '["CMD", "valkey-cli", "ping"]')
           if release in ("main", "v1.0.0") else "")
        + _resources("256M", "0.25", "128M", "0.1") + "\n"
    )


def _ui(release: str, registry: str) -> str:
    main = release == "main"
    env = ["NODE_ENV=${NODE_ENV:-production}", "SKIP_ENV_VALIDATION=${SKIP_ENV_VALIDATION:-1}"]
    if main:
        env += ["DATABASE_URL=" + _required("DATABASE_URL", None),
                "NEXTAUTH_SECRET=" + _required("NEXTAUTH_SECRET", "sirius-ui"),
                "NEXTAUTH_URL=${NEXTAUTH_URL:-http://localhost:3000}",
                "INITIAL_ADMIN_PASSWORD=" + _required("INITIAL_ADMIN_PASSWORD", "sirius-ui")]
    else:
        env += ["DATABASE_URL=${DATABASE_URL:-postgresql://postgres:postgres@sirius-postgres:5432/sirius}",
                "NEXTAUTH_SECRET=${NEXTAUTH_SECRET:-change-this-secret-in-production-please}",
                "NEXTAUTH_URL=${NEXTAUTH_URL:-http://localhost:3000}"]
    env += ["SIRIUS_API_URL=${SIRIUS_API_URL:-http://sirius-api:9001}",
            "NEXT_PUBLIC_SIRIUS_API_URL=${NEXT_PUBLIC_SIRIUS_API_URL:-http://localhost:9001}",
            "DISCORD_CLIENT_ID=${DISCORD_CLIENT_ID:-dummy_client_id}",
            "DISCORD_CLIENT_SECRET=${DISCORD_CLIENT_SECRET:-dummy_client_secret}"]
    env += _api_key_env(release, "sirius-ui")
    out = "  sirius-ui:\n" + _head("sirius-ui", release, registry, restart_first=False)
    out += _ports("sirius-ui") + "    environment:\n" + "".join(f"      - {e}\n" for e in env)
    if main:
        out += "    secrets:\n      - sirius_api_key\n"
        out += _depends(("sirius-postgres", "service_healthy"), ("sirius-api", "service_healthy"),
                        ("sirius-rabbitmq", "service_healthy"))
    else:
        out += _depends(("sirius-postgres", "service_healthy"))
    if release in ("main", "v1.0.0"):
        out += _healthcheck("sirius-ui", '["CMD", "wget", "--no-verbose", "--tries=1", "--spider", '
                                         '"http://127.0.0.1:3000/"]')
        out += _resources("2G", "2", "512M", "0.5")
    else:
        out += _healthcheck("sirius-ui", '["CMD", "curl", "-f", "http://localhost:3000/api/health"]')
        out += _resources("1G", "0.5", "512M", "0.25")
    return out + "\n"


def _migrate(registry: str) -> str:
    env = ["POSTGRES_HOST=${POSTGRES_HOST:-sirius-postgres}", "POSTGRES_USER=${POSTGRES_USER:-postgres}",
           "POSTGRES_PASSWORD=" + _required("POSTGRES_PASSWORD", "sirius-migrate"),
           "POSTGRES_DB=${POSTGRES_DB:-sirius}", "POSTGRES_PORT=${POSTGRES_PORT:-5432}"]
    return ("  # one-shot schema migrator on the sirius-api image; api and engine wait for it\n"
            "  sirius-migrate:\n"
            + f"    image: {registry}/siriusscan/sirius-api:${{IMAGE_TAG:-latest}}\n"
              "    pull_policy: ${SIRIUS_IMAGE_PULL_POLICY:-always}\n"
              "    container_name: sirius-migrate\n    hostname: sirius-migrate\n"
              '    restart: "no"\n    entrypoint: ["/app/migrate"]\n'
            + "    environment:\n" + "".join(f"      - {e}\n" for e in env)
            + _depends(("sirius-postgres", "service_healthy")) + "\n")


def _backend_env(release: str, service: str) -> list[str]:
    main = release == "main"
    pw = ("POSTGRES_PASSWORD=" + _required("POSTGRES_PASSWORD", service) if main
          else "POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-postgres}")
    return ["POSTGRES_HOST=${POSTGRES_HOST:-sirius-postgres}", "POSTGRES_USER=${POSTGRES_USER:-postgres}",
            pw, "POSTGRES_DB=${POSTGRES_DB:-sirius}", "POSTGRES_PORT=${POSTGRES_PORT:-5432}",
            "VALKEY_HOST=${VALKEY_HOST:-sirius-valkey}", "VALKEY_PORT=${VALKEY_PORT:-6379}",
            "RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@sirius-rabbitmq:5672/}"]


def _api(release: str, registry: str) -> str:
    main = release == "main"
    env = ["GO_ENV=${GO_ENV:-production}"]
    if main:
        env.append("SIRIUS_VERSION=${IMAGE_TAG:-latest}")
    env += ["API_PORT=${API_PORT:-9001}", "CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-*}"]
    env += _backend_env(release, "sirius-api")
    env.append("LOG_LEVEL=${LOG_LEVEL:-" + ("info" if release in ("demo", "v0.4.1") else "error") + "}")
    env += _api_key_env(release, "sirius-api")
    out = "  sirius-api:\n" + _head("sirius-api", release, registry, restart_first=False)
    out += _ports("sirius-api") + "    environment:\n" + "".join(f"      - {e}\n" for e in env)
    if main:
        out += "    secrets:\n      - sirius_api_key\n"
    out += (_resources("1G", "1.0", "256M", "0.25") if release in ("main", "v1.0.0")
            else _resources("2G", "1.0", "1G", "0.5"))
    deps = [("sirius-postgres", "service_healthy"), ("sirius-rabbitmq", "service_healthy")]
    if release in ("main", "v1.0.0"):
        deps.append(("sirius-valkey", "service_healthy"))
    if main:
        deps.append(("sirius-migrate", "service_completed_successfully"))
    out += _depends(*deps)
    out += _healthcheck("sirius-api", '["CMD", "wget", "--no-verbose", "--tries=1", "--spider", '
                                      '"http://127.0.0.1:9001/health"]')
    return out + "\n"


def _engine(release: str, registry: str) -> str:
    main = release == "main"
    env = ["GO_ENV=${GO_ENV:-production}", "ENGINE_MAIN_PORT=${ENGINE_MAIN_PORT:-5174}",
           "GRPC_AGENT_PORT=${GRPC_AGENT_PORT:-50051}"]
    env += _backend_env(release, "sirius-engine")
    env += ["SIRIUS_API_URL=${SIRIUS_API_URL:-http://sirius-api:9001}",
            "API_BASE_URL=" + ("${SIRIUS_API_URL:-http://sirius-api:9001}" if main
                               else "${API_BASE_URL:-http://sirius-api:9001}"),
            "AGENT_ID=${AGENT_ID:-sirius-engine}", "HOST_ID=${HOST_ID:-sirius-engine}",
            "ENABLE_SCRIPTING=${ENABLE_SCRIPTING:-true}", "LOG_LEVEL=${LOG_LEVEL:-info}"]
    env += _api_key_env(release, "sirius-engine")
    out = "  sirius-engine:\n" + _head("sirius-engine", release, registry, restart_first=False)
    if main:
        out += "    cap_add:\n      - NET_RAW\n"
    out += _ports("sirius-engine") + "    environment:\n" + "".join(f"      - {e}\n" for e in env)
    if main:
        out += "    secrets:\n      - sirius_api_key\n"
    deps = [("sirius-rabbitmq", "service_healthy")]
    if release in ("main", "v1.0.0"):
        deps += [("sirius-postgres", "service_healthy"), ("sirius-valkey", "service_healthy")]
    if main:
        deps += [("sirius-migrate", "service_completed_successfully"), ("sirius-api", "service_healthy")]
    out += _depends(*deps)
    if main:
        # upstream writes this check as a multi-line flow sequence; same strings
        check = ('\n        [\n          "CMD",\n          "bash",\n          "-lc",\n'
                 '          "' + ENGINE_CHECK_MAIN.replace('"', '\\"') + '",\n        ]')
    elif release == "v1.0.0":
        check = f'["CMD", "bash", "-lc", "{ENGINE_CHECK_V1}"]'
    else:
        check = '["CMD", "curl", "-f", "http://localhost:5174/health"]'
    out += _healthcheck("sirius-engine", check)
    out += _resources("2G", "1.0", "1G", "0.5")
    return out + "\n"


_TAIL_VOLUMES = ("volumes:\n  postgres_data:\n    driver: local\n  valkey_data:\n    driver: local\n"
                 "  rabbitmq_data:\n    driver: local\n\n")
_TAIL_SECRETS = "secrets:\n  sirius_api_key:\n    file: ./secrets/sirius_api_key.txt\n\n"
_TAIL_NETWORK = "networks:\n  default:\n    name: sirius\n    driver: bridge\n"


def compose_yaml(release: str = "main", registry: str = "ghcr.io") -> str:
    """``docker-compose.yaml`` of one fixture release (see the module docstring)."""
    if release not in RELEASES:
        raise ValueError(f"unknown fixture release {release!r}; one of {RELEASES}")
    main = release == "main"
    head = ("# Sirius Scan compose file -- sirius-demo TEST FIXTURE (tests/host), written from\n"
            "# the facts of upstream's file at this release; images are stand-ins in the\n"
            "# tests' registry.  Needs .env and, from v1.1.0, secrets/sirius_api_key.txt.\n\n"
            "name: sirius\n\nservices:\n")
    body = _infra(release, registry) + _ui(release, registry)
    if main:
        body += _migrate(registry)
    body += _api(release, registry) + _engine(release, registry)
    return head + body + _TAIL_VOLUMES + (_TAIL_SECRETS if main else "") + _TAIL_NETWORK


def compose_build_yaml(commit: str = "main") -> str:
    """``docker-compose.build.yaml``: build every image from the repo's (stand-in)
    sources, the local-build fallback
    (``docker compose -f docker-compose.yaml -f docker-compose.build.yaml up -d --build``)."""
    out = ("# Build every image from source instead of pulling it:\n"
           "#   docker compose -f docker-compose.yaml -f docker-compose.build.yaml up -d --build\n"
           "# TEST FIXTURE: the build contexts are stand-ins (static busybox + scripts).\n"
           "services:\n")
    for service in ("sirius-rabbitmq", "sirius-postgres", "sirius-valkey", "sirius-ui", "sirius-api"):
        out += f"  {service}:\n    build:\n      context: ./{service}\n      dockerfile: Dockerfile\n"
        if service in BUILD_TARGETS:
            out += f"      target: {BUILD_TARGETS[service]}\n"
        if service == "sirius-api":
            out += f"      args:\n        GO_API_COMMIT_SHA: {GO_API_COMMIT[commit]}\n"
        out += f"    image: sirius-{service}:source\n    pull_policy: never\n\n"
    out += "  sirius-migrate:\n    image: sirius-sirius-api:source\n    pull_policy: never\n\n"
    out += ("  sirius-engine:\n    build:\n      context: ./sirius-engine\n      dockerfile: Dockerfile\n"
            f"      target: {BUILD_TARGETS['sirius-engine']}\n"
            "    image: sirius-sirius-engine:source\n    pull_policy: never\n")
    return out


RABBITMQ_CONF = """\
listeners.tcp.default = 5672
default_vhost = /
default_user = guest
default_pass = guest
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
"""


def loopback_override_yaml(ports: dict[str, tuple[int, ...]] | None = None) -> str:
    """A compose override re-binding every published port to 127.0.0.1 (the fixture
    publishes on all addresses, as upstream does).  ``!override`` replaces the
    list instead of merging into it (Compose >= 2.24)."""
    out = "services:\n"
    for service, plist in (ports or PUBLISHED_PORTS).items():
        out += f"  {service}:\n    ports: !override\n"
        out += "".join(f'      - "127.0.0.1:{p}:{p}"\n' for p in plist)
    return out


def fast_health_override_yaml(services=tuple(HEALTH_TIMING), start_period: str = "120s",
                              start_interval: str = "1s") -> str:
    """A compose override giving each health-checked service ``start_period`` and
    ``start_interval`` (Engine >= 25), keeping upstream's interval/timeout/retries:
    during the start period Docker checks every ``start_interval``, so a service is
    reported healthy about a second after it is ready instead of one interval later."""
    out = "services:\n"
    for service in services:
        out += (f"  {service}:\n    healthcheck:\n      start_period: {start_period}\n"
                f"      start_interval: {start_interval}\n")
    return out
