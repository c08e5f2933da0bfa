// Validates Kubernetes custom resources against the JSON schemas that the maintained
// @kubernetes-models packages generate from the operators' own CRDs (KEDA, CloudNativePG).
// Input (stdin): a JSON array of objects. Output (stdout): a JSON array, one entry per
// object: {index, apiVersion, kind, name, status: "valid" | "invalid" | "unknown", errors}.
// "unknown": no package here knows that apiVersion/kind (the caller validates it).
const PACKAGES = {
  "keda.sh": "@kubernetes-models/keda",
  "postgresql.cnpg.io": "@kubernetes-models/cloudnative-pg",
};

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const pkg = PACKAGES[group];
  if (!pkg || !/^[A-Za-z0-9]+$/.test(kind)) return null;
  try {
    const module = await import(`${pkg}/${group}/${version}/${kind}`);
    return module[kind] ?? null;
  } catch (error) {
    if (error.code === "ERR_MODULE_NOT_FOUND" || error.code === "ERR_PACKAGE_PATH_NOT_EXPORTED") {
      return null;
    }
    throw error;
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = [];
for (const [index, object] of objects.entries()) {
  const { apiVersion = "", kind = "", metadata = {} } = object ?? {};
  const entry = { index, apiVersion, kind, name: metadata.name ?? null, status: "unknown", errors: [] };
  const Model = await modelFor(apiVersion, kind);
  if (Model) {
    try {
      new Model(object).validate();
      entry.status = "valid";
    } catch (error) {
      entry.status = "invalid";
      entry.errors = [String(error.message ?? error)];
    }
  }
  results.push(entry);
}
process.stdout.write(JSON.stringify(results));
