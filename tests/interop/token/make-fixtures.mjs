// Regenerates tests/fixtures/auth/js-* with the published @moq/token library, so the unit
// tests can check JS-made keys and tokens without network access.
// Usage: node make-fixtures.mjs OUT_DIR   (with @moq/token@0.2.3 resolvable)
import { generate, sign, toPublicKey } from "@moq/token";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
const cases = [
	["HS256", "js-hs256", { root: "live", put: ["camera1"], get: ["camera1", "camera2"] }],
	["ES256", "js-es256", { root: "room/1", get: "" }],
	["EdDSA", "js-eddsa", { root: "stream", put: ["video"] }],
	["RS256", "js-rs256", { root: "", put: [""], get: [""] }],
];
for (const [alg, kid, claims] of cases) {
	const key = await generate(alg, kid);
	writeFileSync(join(out, `${kid}.jwk`), JSON.stringify(key, null, 2));
	if (key.kty !== "oct") writeFileSync(join(out, `${kid}.pub.jwk`), JSON.stringify(toPublicKey(key), null, 2));
	writeFileSync(join(out, `${kid}.jwt`), await sign(key, claims));
	if (alg === "HS256") {
		const b64 = Buffer.from(JSON.stringify(key, null, 2)).toString("base64url");
		writeFileSync(join(out, `${kid}.b64.jwk`), b64);
	}
}
