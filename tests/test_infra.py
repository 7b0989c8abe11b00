"""Static checks of the Azure infrastructure in infra/ (Bicep).

No Bicep compiler can be installed on these machines, so these tests read the Bicep text
with a small scanner (comments, strings and ``${}`` interpolations understood) and check
what a reviewer would: brackets balance, every module file exists and is wired with the
parameters it declares, the parameter files only set declared parameters with allowed
values, the Function App gets every setting the code reads, and the names in the
infrastructure are the names in the code (jobs queue, blob container, API route).
The last tests break a copy of infra/ on purpose to prove the checks notice.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from shared.adapters.launcher import JOBS_QUEUE
from shared.config import PROJECT_ROOT, Settings

INFRA = PROJECT_ROOT / "infra"

# Settings the Function App must carry (infra/README.md explains each one).
REQUIRED_APP_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsStorage__accountName",
    "ServiceBusConnection__fullyQualifiedNamespace",
    "SH_BACKEND",
    "SH_DATABASE_URL",
    "SH_STORAGE_ACCOUNT_URL",
    "SH_STORAGE_CONTAINER",
    "SH_SERVICEBUS_NAMESPACE",
    "SH_JOBS_QUEUE",
    "SH_RUN_MIGRATIONS",
    "SH_LOG_JSON",
    "SH_GATEWAY_SECRET",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
}

# Built-in role definition ids the app's identity needs.
ROLE_IDS = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Azure Service Bus Data Sender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
    "Azure Service Bus Data Receiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
}


# --------------------------------------------------------------------------------------
# A small Bicep scanner
# --------------------------------------------------------------------------------------


class BicepSyntaxError(ValueError):
    pass


def mask(text: str, *, blank_strings: bool) -> str:
    """``text`` with comments blanked (and string contents too if ``blank_strings``).

    Same length as ``text`` and newlines kept, so offsets and line numbers carry over.
    String delimiters stay. Handles ``'...'`` with ``\\`` escapes and nested ``${...}``
    interpolations, and ``'''...'''`` multi-line strings.
    """
    out = list(text)

    def blank(start: int, end: int) -> None:
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "

    stack = ["code"]  # "code" (top level or inside ${...}) or "str"
    depth: list[int] = []  # brace depth of each open interpolation
    i, n = 0, len(text)
    while i < n:
        in_interp = len(stack) > 1
        if stack[-1] == "code":
            if text.startswith("//", i):
                end = text.find("\n", i)
                end = n if end < 0 else end
                blank(i, end)
                i = end
                continue
            if text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise BicepSyntaxError(f"unterminated comment at offset {i}")
                blank(i, end + 2)
                i = end + 2
                continue
            if text.startswith("'''", i):
                end = text.find("'''", i + 3)
                if end < 0:
                    raise BicepSyntaxError(f"unterminated ''' string at offset {i}")
                if blank_strings:
                    blank(i + 3, end)
                i = end + 3
                continue
            char = text[i]
            if char == "'":
                stack.append("str")
                i += 1
                continue
            if in_interp:
                if char == "{":
                    depth[-1] += 1
                elif char == "}":
                    if depth[-1] == 0:
                        depth.pop()
                        stack.pop()
                        if blank_strings:
                            blank(i, i + 1)
                        i += 1
                        continue
                    depth[-1] -= 1
                if blank_strings:
                    blank(i, i + 1)
            i += 1
        else:
            char = text[i]
            if char == "\n":
                raise BicepSyntaxError(f"unterminated string at offset {i}")
            if char == "\\":
                if blank_strings:
                    blank(i, i + 2)
                i += 2
                continue
            if char == "'":
                stack.pop()
                i += 1
                continue
            if text.startswith("${", i):
                stack.append("code")
                depth.append(0)
                if blank_strings:
                    blank(i, i + 2)
                i += 2
                continue
            if blank_strings:
                blank(i, i + 1)
            i += 1
    if len(stack) != 1:
        raise BicepSyntaxError("unterminated string or interpolation at end of file")
    return "".join(out)


PAIRS = {"(": ")", "[": "]", "{": "}"}


def bracket_problems(text: str) -> list[str]:
    """Unbalanced or crossed brackets outside strings and comments."""
    try:
        skeleton = mask(text, blank_strings=True)
    except BicepSyntaxError as exc:
        return [str(exc)]
    problems: list[str] = []
    open_stack: list[tuple[str, int]] = []
    for offset, char in enumerate(skeleton):
        if char in PAIRS:
            open_stack.append((char, offset))
        elif char in PAIRS.values():
            line = skeleton.count("\n", 0, offset) + 1
            if not open_stack:
                problems.append(f"line {line}: unexpected {char!r}")
                continue
            opener, _ = open_stack.pop()
            if PAIRS[opener] != char:
                problems.append(f"line {line}: {char!r} closes {opener!r}")
    for opener, offset in open_stack:
        line = skeleton.count("\n", 0, offset) + 1
        problems.append(f"line {line}: {opener!r} never closed")
    return problems


def matching(skeleton: str, open_index: int) -> int:
    """Index of the bracket closing the one at ``open_index`` (skeleton text)."""
    closer = PAIRS[skeleton[open_index]]
    level = 0
    for k in range(open_index, len(skeleton)):
        if skeleton[k] == skeleton[open_index]:
            level += 1
        elif skeleton[k] == closer:
            level -= 1
            if level == 0:
                return k
    raise BicepSyntaxError(f"bracket at offset {open_index} never closed")


class BicepFile:
    """Declarations of one .bicep file, read from its comment-free text."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.code = mask(self.text, blank_strings=False)
        self.skeleton = mask(self.text, blank_strings=True)

    def params(self) -> dict[str, bool]:
        """Declared parameters -> whether each has a default value."""
        found = re.finditer(r"^\s*param\s+(\w+)\s+[\w.]+\??([^\n]*)$", self.code, re.M)
        return {m.group(1): "=" in m.group(2) for m in found}

    def outputs(self) -> set[str]:
        return set(re.findall(r"^\s*output\s+(\w+)\s", self.code, re.M))

    def var(self, name: str) -> str:
        """The expression of ``var name = ...`` (a whole array if it spans lines)."""
        m = re.search(rf"^\s*var\s+{name}\s*=\s*", self.code, re.M)
        if not m:
            raise KeyError(f"{self.path.name}: no var {name}")
        start = m.end()
        if self.skeleton[start] in PAIRS:
            return self.code[start : matching(self.skeleton, start) + 1]
        return self.code[start:].split("\n", 1)[0].strip()

    def string_var(self, name: str) -> str:
        value = self.var(name)
        m = re.fullmatch(r"'([^'$]*)'", value)
        if not m:
            raise AssertionError(f"var {name} is not a plain string: {value}")
        return m.group(1)

    def array_var(self, name: str) -> list[str]:
        return re.findall(r"'([^']*)'", self.var(name))

    def references(self, keyword: str) -> list[tuple[str, str]]:
        """(symbol, path) of ``module symbol 'path'`` (keyword='module')."""
        pattern = rf"^\s*{keyword}\s+(\w+)\s+'([^']+)'"
        return re.findall(pattern, self.code, re.M)

    def loaded_files(self) -> list[str]:
        return re.findall(r"\bload(?:Text|Json|Yaml)Content\(\s*'([^']+)'", self.code)

    def _block(self, start: int) -> tuple[int, int]:
        open_index = start
        while self.skeleton[open_index] not in "{[":
            open_index += 1
        return open_index, matching(self.skeleton, open_index)

    def top_level_keys(self, open_index: int, close_index: int) -> dict[str, str]:
        """``key: value`` pairs directly inside the object spanning the given indexes."""
        keys: dict[str, str] = {}
        level = 0  # nesting below the object's own brackets
        line_start, line_level = open_index + 1, 0
        for k in range(open_index + 1, close_index + 1):
            char = self.skeleton[k]
            if char == "\n" or k == close_index:
                if line_level == 0:
                    m = re.match(
                        r"[ \t]*(\w+)[ \t]*:[ \t]*(.*)", self.code[line_start:k]
                    )
                    if m:
                        keys[m.group(1)] = m.group(2).strip()
                line_start, line_level = k + 1, level
            if char in "{[(":
                level += 1
            elif char in "}])":
                level -= 1
        return keys

    def module_params(self, symbol: str) -> dict[str, str]:
        """Parameters passed by ``module symbol '...' = { params: { ... } }``."""
        m = re.search(rf"^[ \t]*module\s+{symbol}\s+'", self.skeleton, re.M)
        if not m:
            raise KeyError(f"{self.path.name}: no module {symbol}")
        open_index, close_index = self._block(self.skeleton.index("=", m.end()))
        body = self.top_level_keys(open_index, close_index)
        if "params" not in body:
            return {}
        params_at = self.skeleton.index("params", open_index)
        return self.top_level_keys(*self._block(self.skeleton.index(":", params_at)))

    def app_settings(self) -> dict[str, str]:
        """``name -> value expression`` of every item of a ``appSettings: [...]`` array."""
        settings: dict[str, str] = {}
        for m in re.finditer(r"\bappSettings\s*:", self.skeleton):
            open_index, close_index = self._block(m.end())
            k = open_index + 1
            while True:
                k = self.skeleton.find("{", k, close_index)
                if k < 0:
                    break
                end = matching(self.skeleton, k)
                item = self.top_level_keys(k, end)
                name = re.fullmatch(r"'([^']+)'", item.get("name", ""))
                if name:
                    settings[name.group(1)] = item.get("value", "")
                k = end + 1
        return settings


def bicep_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.bicep"))


def main_file(root: Path) -> BicepFile:
    return BicepFile(root / "main.bicep")


def parameter_files(root: Path) -> dict[str, Path]:
    found = root.glob("main.parameters.*.json")
    return {p.name.split(".")[2]: p for p in sorted(found)}


# --------------------------------------------------------------------------------------
# Checks that return problems (also run against broken copies below)
# --------------------------------------------------------------------------------------


def missing_referenced_files(root: Path) -> list[str]:
    problems = []
    for path in bicep_files(root):
        bicep = BicepFile(path)
        refs = [ref for _, ref in bicep.references("module")] + bicep.loaded_files()
        for ref in refs:
            if ":" in ref.split("/")[0]:  # registry or template-spec reference
                continue
            if not (path.parent / ref).is_file():
                problems.append(f"{path.relative_to(root)} references missing {ref}")
    return problems


def module_wiring_problems(root: Path) -> list[str]:
    """Each module gets exactly the parameters it declares and has the outputs used."""
    main = main_file(root)
    problems = []
    for symbol, ref in main.references("module"):
        module_path = root / ref
        if not module_path.is_file():
            problems.append(f"module {symbol}: {ref} missing")
            continue
        module = BicepFile(module_path)
        declared = module.params()
        passed = main.module_params(symbol)
        for name in sorted(set(passed) - set(declared)):
            problems.append(
                f"module {symbol} passes {name}, which {ref} does not declare"
            )
        for name, has_default in sorted(declared.items()):
            if not has_default and name not in passed:
                problems.append(f"module {symbol} does not pass required param {name}")
        used = set(re.findall(rf"\b{symbol}\.outputs\.(\w+)", main.code))
        for name in sorted(used - module.outputs()):
            problems.append(f"{symbol}.outputs.{name} is not an output of {ref}")
    return problems


def missing_app_settings(root: Path) -> list[str]:
    settings = BicepFile(root / "modules" / "functionapp.bicep").app_settings()
    return sorted(REQUIRED_APP_SETTINGS - set(settings))


def parameter_file_problems(root: Path, path: Path) -> list[str]:
    """Values set in a parameter file must be declared in main.bicep and allowed there."""
    main = main_file(root)
    declared = main.params()
    document = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    if not document.get("$schema", "").endswith("deploymentParameters.json#"):
        problems.append(f"{path.name}: $schema is not a deployment parameters schema")
    values = document.get("parameters", {})
    for name, entry in values.items():
        if name not in declared:
            problems.append(f"{path.name}: {name} is not a param of main.bicep")
        if "value" not in entry:
            problems.append(f"{path.name}: {name} has no value")
    for name, allowed in allowed_values(main).items():
        if name in values and values[name].get("value") not in allowed:
            problems.append(
                f"{path.name}: {name}={values[name].get('value')!r} not in {allowed}"
            )
    for name, (low, high) in value_ranges(main).items():
        value = values.get(name, {}).get("value")
        if isinstance(value, int) and not (low <= value <= high):
            problems.append(f"{path.name}: {name}={value} outside [{low}, {high}]")
    return problems


def allowed_values(bicep: BicepFile) -> dict[str, list[object]]:
    found: dict[str, list[object]] = {}
    for m in re.finditer(r"@allowed\(\s*\[(.*?)\]\s*\)", bicep.code, re.S):
        param = re.search(r"\bparam\s+(\w+)", bicep.code[m.end() :])
        assert param, f"@allowed without a param in {bicep.path.name}"
        items = re.findall(r"'([^']*)'|(-?\d+)", m.group(1))
        found[param.group(1)] = [s if s else int(i) for s, i in items]
    return found


def value_ranges(bicep: BicepFile) -> dict[str, tuple[float, float]]:
    ranges: dict[str, tuple[float, float]] = {}
    decorated = r"((?:\s*@\w+\((?:[^()]|\([^()]*\))*\))+)\s*param\s+(\w+)\s+int\b"
    for m in re.finditer(decorated, bicep.code):
        low = re.search(r"@minValue\((-?\d+)\)", m.group(1))
        high = re.search(r"@maxValue\((-?\d+)\)", m.group(1))
        ranges[m.group(2)] = (
            int(low.group(1)) if low else float("-inf"),
            int(high.group(1)) if high else float("inf"),
        )
    return ranges


# --------------------------------------------------------------------------------------
# Tests on infra/ as it is
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(INFRA), ids=lambda p: p.name)
def test_brackets_and_strings_balance(path: Path) -> None:
    assert bracket_problems(path.read_text(encoding="utf-8")) == []


def test_every_referenced_file_exists() -> None:
    assert missing_referenced_files(INFRA) == []


def test_every_module_file_is_used() -> None:
    used = {
        (path.parent / ref).resolve()
        for path in bicep_files(INFRA)
        for _, ref in BicepFile(path).references("module")
    }
    modules = {p.resolve() for p in (INFRA / "modules").glob("*.bicep")}
    assert modules, "no modules under infra/modules"
    assert modules - used == set()


def test_modules_are_wired_with_their_declared_params_and_outputs() -> None:
    assert module_wiring_problems(INFRA) == []


def test_dev_and_prod_parameter_files_exist() -> None:
    assert set(parameter_files(INFRA)) == {"dev", "prod"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_parameter_file_sets_declared_and_allowed_values(env: str) -> None:
    path = parameter_files(INFRA)[env]
    assert parameter_file_problems(INFRA, path) == []
    values = json.loads(path.read_text(encoding="utf-8"))["parameters"]
    assert values["environmentName"]["value"] == env


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_required_params_come_from_file_or_readme(env: str) -> None:
    """A param without default is in the file, or the README shows passing it."""
    values = json.loads(parameter_files(INFRA)[env].read_text(encoding="utf-8"))
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    required = {
        name
        for name, has_default in main_file(INFRA).params().items()
        if not has_default
    }
    for name in sorted(required - set(values["parameters"])):
        assert f"{name}=" in readme, (
            f"{name} is neither in {env} parameters nor in README"
        )


def test_prod_is_sized_differently_from_dev() -> None:
    files = parameter_files(INFRA)
    dev, prod = (
        json.loads(files[env].read_text(encoding="utf-8"))["parameters"]
        for env in ("dev", "prod")
    )
    for name in ("functionPlanSku", "postgresSkuName", "storageSkuName"):
        assert dev[name]["value"] != prod[name]["value"], name
    assert (
        prod["functionAlwaysReadyInstances"]["value"]
        >= dev["functionAlwaysReadyInstances"]["value"]
    )
    assert prod["postgresHighAvailability"]["value"] != "Disabled"
    # Burstable PostgreSQL has no high availability: dev must not ask for it.
    assert dev["postgresSkuTier"]["value"] != "Burstable" or (
        dev["postgresHighAvailability"]["value"] == "Disabled"
    )


def test_function_app_has_every_required_setting() -> None:
    assert missing_app_settings(INFRA) == []


def test_function_app_setting_values() -> None:
    module = BicepFile(INFRA / "modules" / "functionapp.bicep")
    settings = module.app_settings()
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "'python'"
    assert settings["SH_BACKEND"] == "'azure'"
    assert settings["SH_RUN_MIGRATIONS"] == "'false'"
    assert settings["SH_LOG_JSON"] == "'true'"
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert settings["SH_STORAGE_ACCOUNT_URL"].startswith(
        "'https://${storageAccountName}.blob."
    )
    assert settings["SH_STORAGE_CONTAINER"] == "dataContainerName"
    assert settings["SH_JOBS_QUEUE"] == "jobsQueueName"
    # one Python worker process per core of the plan's size (scoring holds the GIL)
    assert (
        settings["FUNCTIONS_WORKER_PROCESS_COUNT"] == "string(workerProcesses[planSku])"
    )
    assert "EP2: 2" in module.code and "EP3: 4" in module.code
    namespace = settings["ServiceBusConnection__fullyQualifiedNamespace"]
    assert namespace == settings["SH_SERVICEBUS_NAMESPACE"] == "serviceBusFqdn"
    # No key-based storage connection anywhere: identity only.
    assert "AzureWebJobsStorage" not in settings
    assert "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING" not in settings
    assert "listKeys(" not in "".join(BicepFile(p).code for p in bicep_files(INFRA))


def test_database_url_uses_the_app_identity_and_the_shadowhubble_database() -> None:
    module = BicepFile(INFRA / "modules" / "functionapp.bicep")
    expression = module.app_settings()["SH_DATABASE_URL"]
    if re.fullmatch(r"\w+", expression):
        expression = module.var(expression)
    assert expression == (
        "'postgresql+psycopg://${appName}@${postgresFqdn}:5432/${databaseName}?sslmode=require'"
    )
    assert "name: appName" in module.code  # the site is named appName ...
    main = main_file(INFRA)
    # ... and that name is the PostgreSQL role of the identity, on the server the URL names.
    assert (
        main.module_params("postgresAdmins")["appPrincipalName"]
        == "functionApp.outputs.name"
    )
    assert main.module_params("postgresAdmins")["appPrincipalId"] == (
        "functionApp.outputs.principalId"
    )
    assert main.module_params("functionApp")["postgresFqdn"] == "postgres.outputs.fqdn"
    assert main.string_var("databaseName") == "shadowhubble"
    assert main.module_params("postgres")["databaseName"] == "databaseName"
    assert main.module_params("functionApp")["databaseName"] == "databaseName"


def test_jobs_queue_matches_the_launcher() -> None:
    main = main_file(INFRA)
    assert main.string_var("jobsQueueName") == JOBS_QUEUE
    assert main.module_params("serviceBus")["jobsQueueName"] == "jobsQueueName"
    assert main.module_params("functionApp")["jobsQueueName"] == "jobsQueueName"
    servicebus = BicepFile(INFRA / "modules" / "servicebus.bicep")
    assert re.search(
        r"namespaces/queues@[^']+' = \{\s*parent: \w+\s*name: jobsQueueName",
        servicebus.code,
    )


def test_alerts_topic_and_its_subscriptions() -> None:
    main = main_file(INFRA)
    assert main.string_var("alertsTopicName") == "alerts"
    assert main.array_var("alertSubscriptionNames") == ["webhooks", "audit", "retrain"]
    servicebus = BicepFile(INFRA / "modules" / "servicebus.bicep")
    assert re.search(
        r"namespaces/topics@[^']+' = \{\s*parent: \w+\s*name: alertsTopicName",
        servicebus.code,
    )
    assert re.search(
        r"topics/subscriptions@[^']+' = \[\s*for (\w+) in alertSubscriptionNames:"
        r"\s*\{\s*parent: \w+\s*name: \1\b",
        servicebus.code,
    )
    assert "'Standard'" in str(allowed_values(main)["serviceBusSku"])


def test_blob_container_matches_the_settings_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SH_STORAGE_CONTAINER", raising=False)
    main = main_file(INFRA)
    assert main.string_var("dataContainerName") == Settings().storage_container
    assert main.module_params("storage")["dataContainerName"] == "dataContainerName"
    assert main.module_params("functionApp")["dataContainerName"] == "dataContainerName"
    storage = BicepFile(INFRA / "modules" / "storage.bicep")
    assert re.search(
        r"containers@[^']+' = \{\s*parent: \w+\s*name: dataContainerName", storage.code
    )
    assert "allowSharedKeyAccess: false" in storage.code


def test_identity_has_the_storage_and_service_bus_roles() -> None:
    roles = BicepFile(INFRA / "modules" / "roles.bicep")
    for role, guid in ROLE_IDS.items():
        var = re.search(rf"^\s*var\s+(\w+)\s*=\s*'{guid}'", roles.code, re.M)
        assert var, f"{role} ({guid}) missing from roles.bicep"
        assigned = rf"roleDefinitions', {var.group(1)}\)\s*principalId: principalId\b"
        assert re.search(assigned, roles.code), (
            f"{role} not assigned to the app identity"
        )
    main = main_file(INFRA)
    assert (
        main.module_params("roles")["principalId"] == "functionApp.outputs.principalId"
    )


def test_function_app_plan_runtime_identity_and_vnet() -> None:
    module = BicepFile(INFRA / "modules" / "functionapp.bicep")
    assert "linuxFxVersion: 'Python|3.11'" in module.code
    assert "tier: 'ElasticPremium'" in module.code
    assert re.search(r"identity: \{\s*type: 'SystemAssigned'\s*\}", module.code)
    assert "virtualNetworkSubnetId: integrationSubnetId" in module.code
    assert "vnetRouteAllEnabled: true" in module.code
    # The plan choice is justified where it is made.
    header = main_file(INFRA).text.split("targetScope", 1)[0]
    assert "Elastic Premium" in header and "Flex Consumption" in header
    network = BicepFile(INFRA / "modules" / "network.bicep")
    assert "'Microsoft.Web/serverFarms'" in network.code
    assert "'Microsoft.DBforPostgreSQL/flexibleServers'" in network.code


def test_postgres_is_private_with_entra_auth() -> None:
    main = main_file(INFRA)
    assert set(allowed_values(main)["postgresVersion"]) <= {"15", "16"}
    postgres = BicepFile(INFRA / "modules" / "postgres.bicep")
    assert "activeDirectoryAuth: 'Enabled'" in postgres.code
    assert "passwordAuth: 'Disabled'" in postgres.code
    assert "delegatedSubnetResourceId: delegatedSubnetId" in postgres.code
    assert "publicNetworkAccess: 'Disabled'" in postgres.code
    assert (
        main.module_params("postgres")["delegatedSubnetId"]
        == "network.outputs.postgresSubnetId"
    )


def test_apim_imports_the_app_openapi_document() -> None:
    from functions.api.app import API_PREFIX

    main = main_file(INFRA)
    url = main.module_params("apim")["openApiUrl"]
    assert (
        url
        == f"'https://${{functionApp.outputs.defaultHostName}}{API_PREFIX}/openapi.json'"
    )
    apim = BicepFile(INFRA / "modules" / "apim.bicep")
    assert "name: 'Consumption'" in apim.code
    assert "format: 'openapi+json-link'" in apim.code
    assert "value: openApiUrl" in apim.code
    policy = (INFRA / "modules" / "apim-policy.xml").read_text(encoding="utf-8")
    assert '<set-backend-service backend-id="__BACKEND_ID__" />' in policy
    staticwebapp = BicepFile(INFRA / "modules" / "staticwebapp.bicep")
    assert "Microsoft.Web/staticSites@" in staticwebapp.code
    assert set(allowed_values(main)["staticWebAppSku"]) <= {"Free", "Standard"}


def test_only_the_gateway_knows_the_secret_the_app_requires() -> None:
    """API Management adds the app's gateway secret to every forwarded request, from a
    secret named value, and the same deployment parameter sets both sides."""
    from functions.api.gateway import HEADER

    main = main_file(INFRA)
    assert main.module_params("functionApp")["gatewaySecret"] == "gatewaySecret"
    assert main.module_params("apim")["gatewaySecret"] == "gatewaySecret"
    assert re.search(
        r"@secure\(\)\s*(@description\([^\n]*\)\s*)?param gatewaySecret string",
        main.code,
    )
    module = BicepFile(INFRA / "modules" / "functionapp.bicep")
    assert module.app_settings()["SH_GATEWAY_SECRET"] == "gatewaySecret"
    apim = BicepFile(INFRA / "modules" / "apim.bicep")
    named = re.search(
        r"resource \w+ 'Microsoft.ApiManagement/service/namedValues@[^']+' = \{(.*?)\n\}",
        apim.code,
        re.S,
    )
    assert named is not None
    assert "name: 'gateway-secret'" in named.group(1)
    assert "secret: true" in named.group(1) and "value: gatewaySecret" in named.group(1)
    policy = (INFRA / "modules" / "apim-policy.xml").read_text(encoding="utf-8")
    header = re.search(
        r'<set-header name="([^"]+)" exists-action="override">\s*'
        r"<value>\{\{gateway-secret\}\}</value>",
        policy,
    )
    assert header is not None and header.group(1).lower().encode() == HEADER


def test_readme_covers_the_deploy_steps() -> None:
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for step in ("az deployment group create", "alembic upgrade head", "openapi.json"):
        assert step in readme
    assert "not deployed" in readme.lower()


# --------------------------------------------------------------------------------------
# The checks catch breakage (run on a copy of infra/)
# --------------------------------------------------------------------------------------


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    target = tmp_path / "infra"
    shutil.copytree(INFRA, target)
    return target


def test_a_missing_module_file_is_caught(infra_copy: Path) -> None:
    (infra_copy / "modules" / "servicebus.bicep").unlink()
    assert missing_referenced_files(infra_copy) == [
        "main.bicep references missing modules/servicebus.bicep"
    ]
    assert module_wiring_problems(infra_copy) == [
        "module serviceBus: modules/servicebus.bicep missing"
    ]


def test_a_dropped_app_setting_is_caught(infra_copy: Path) -> None:
    path = infra_copy / "modules" / "functionapp.bicep"
    text = path.read_text(encoding="utf-8")
    dropped = re.sub(r"\{\s*name: 'SH_JOBS_QUEUE'\s*value: \w+\s*\}", "", text)
    assert dropped != text
    path.write_text(dropped, encoding="utf-8")
    assert missing_app_settings(infra_copy) == ["SH_JOBS_QUEUE"]


def test_a_setting_only_in_a_comment_does_not_count(infra_copy: Path) -> None:
    path = infra_copy / "modules" / "functionapp.bicep"
    text = path.read_text(encoding="utf-8")
    commented = text.replace("name: 'SH_LOG_JSON'", "// name: 'SH_LOG_JSON'")
    path.write_text(commented, encoding="utf-8")
    assert missing_app_settings(infra_copy) == ["SH_LOG_JSON"]


def test_an_unwired_module_param_is_caught(infra_copy: Path) -> None:
    path = infra_copy / "main.bicep"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("    jobsQueueName: jobsQueueName\n", "", 1), encoding="utf-8"
    )
    assert module_wiring_problems(infra_copy) == [
        "module serviceBus does not pass required param jobsQueueName"
    ]


def test_an_undeclared_or_disallowed_parameter_is_caught(infra_copy: Path) -> None:
    path = infra_copy / "main.parameters.dev.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["parameters"]["functionPlanSku"] = {"value": "Y1"}
    document["parameters"]["noSuchParam"] = {"value": 1}
    document["parameters"]["functionMaximumInstances"] = {"value": 1000}
    path.write_text(json.dumps(document), encoding="utf-8")
    problems = parameter_file_problems(infra_copy, path)
    assert len(problems) == 3
    assert any("noSuchParam" in p for p in problems)
    assert any("functionPlanSku='Y1'" in p for p in problems)
    assert any("functionMaximumInstances=1000" in p for p in problems)


def test_unbalanced_brackets_and_strings_are_caught() -> None:
    assert bracket_problems("var a = {\n  b: [\n    'c'\n  }\n") != []
    assert bracket_problems("var a = 'never closed\n") != []
    assert bracket_problems("var a = '${b('{')}' // }\n") == []
