"""Strict, offline validation of Kubernetes manifests (what `cargo xtask lint` runs on every rendered
overlay of deploy/k8s and on deploy/postgres/cluster.yaml).

Each document is checked against the OpenAPI schema of its kind for each Kubernetes version given,
with the schemas that the PyPI package kubernetes-validate bundles in their strict form: an
unknown field anywhere is an error, as are a wrong type, a missing required field and a kind or
apiVersion without a schema. kubernetes-validate's own command line only warns about the last, so
this script calls its library instead. Custom resources are validated against the schemas listed
in CUSTOM_SCHEMAS (vendored from their CRDs and made strict the same way: an object that lists its
properties admits no others, unless the CRD preserves unknown fields there); their metadata is
checked as ObjectMeta. YAML with a duplicate key is refused.

    python deploy/validate.py [-k 1.31.0 -k 1.37.0] FILE...

Prints one line per invalid document and version, then a summary; exits 1 if any was invalid.
"""

import argparse
import json
import pathlib
import sys

import jsonschema
import yaml
from kubernetes_validate import utils
from referencing import Registry, Resource

HERE = pathlib.Path(__file__).resolve().parent

# (apiVersion, kind) -> vendored JSON schema of the custom resource.
CUSTOM_SCHEMAS = {
    ("postgresql.cnpg.io/v1", "Cluster"): HERE / "postgres" / "cluster.schema.json",
}

OBJECT_META = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def strict(schema):
    """`schema` with `additionalProperties: false` on every object that lists its properties and
    neither says what else it admits nor preserves unknown fields (what Kubernetes prunes)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def location(path):
    return ".".join(map(str, path)) or "(top level)"


def custom_validator(path, version):
    schema = strict(json.loads(path.read_text()))
    schema["properties"]["metadata"] = {"$ref": OBJECT_META}
    definitions = utils.schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
    )
    registry = Resource.from_contents(definitions) @ Registry()
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate(doc, version, custom):
    """None when `doc` is valid for Kubernetes `version`, else why not."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return "not a Kubernetes object (no apiVersion and kind)"
    key = (doc["apiVersion"], doc["kind"])
    if key in CUSTOM_SCHEMAS:
        if (key, version) not in custom:
            custom[key, version] = custom_validator(CUSTOM_SCHEMAS[key], version)
        errors = sorted(custom[key, version].iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            return "; ".join(f"{location(e.absolute_path)}: {e.message}" for e in errors)
        return None
    try:
        utils.validate(doc, version, strict=True)
    except utils.ValidationError as e:
        return f"{location(e.path)}: {e.message}"
    except utils.SchemaNotFoundError as e:
        return e.message
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", "--kubernetes-version", action="append", dest="versions")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    bundled = {utils.major_minor(v): v for v in utils.all_versions()}
    versions = []
    for wanted in args.versions or [utils.latest_version()]:
        version = bundled.get(utils.major_minor(wanted.lstrip("v")))
        if version is None:
            parser.error(f"no schemas for Kubernetes {wanted}: kubernetes-validate has {', '.join(bundled)}")
        versions.append(version)
    custom = {}
    failed = 0
    valid = 0
    for name in args.files:
        try:
            docs = [d for d in yaml.load_all(pathlib.Path(name).read_text(), Loader=UniqueKeyLoader) if d]
        except (OSError, yaml.YAMLError) as e:
            print(f"ERROR {name}: {e}")
            failed += 1
            continue
        if not docs:
            print(f"ERROR {name}: no documents")
            failed += 1
        for doc in docs:
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            what = f"{doc.get('kind', '?')}/{(meta or {}).get('name', '?')}" if isinstance(doc, dict) else "?"
            for version in versions:
                problem = validate(doc, version, custom)
                if problem:
                    failed += 1
                    print(f"ERROR {name}: {what} (Kubernetes {version}): {problem}")
                else:
                    valid += 1
    print(f"strict validation against Kubernetes {', '.join(versions)}: {valid} valid, {failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
