// Decrypt a sops file with npm sops-age (an implementation we did not write).
// Usage: node sops_age_decrypt.mjs FILE   (identity in SOPS_AGE_KEY); prints JSON.
import { readFileSync } from "node:fs";
import { decryptSops } from "sops-age";

const [file] = process.argv.slice(2);
const secretKey = (process.env.SOPS_AGE_KEY || "").trim();
const text = readFileSync(file, "utf8");
const result = await decryptSops(text, { secretKey, fileType: "yaml" });
process.stdout.write(JSON.stringify(result));
