// Drives the published @moq/token library for tests/interop/test_token_interop.sh.
//   gen ALG KID PRIVATE_OUT PUBLIC_OUT [json|base64]   generate a key (public: "-" to skip)
//   sign KEY_FILE ROOT PUT GET [EXP]                    sign; PUT/GET are comma lists, "-" omits
//   verify KEY_FILE TOKEN ROOT                          verify, print the claims as JSON
//   reexport KEY_FILE OUT                               load a key and write it back as JSON
// Lists: "" is the one-element list [""]; "a,b" is ["a","b"].
import { readFileSync, writeFileSync } from "node:fs";
import { generate, load, loadPublic, sign, toPublicKey, verify } from "@moq/token";

const [cmd, ...args] = process.argv.slice(2);

function encode(key, form) {
	const json = JSON.stringify(key, null, 2);
	return form === "base64" ? Buffer.from(json).toString("base64url") : json;
}

function list(arg) {
	return arg === "-" ? undefined : arg.split(",");
}

function loadAny(text) {
	try {
		return loadPublic(text);
	} catch {
		return load(text);
	}
}

switch (cmd) {
	case "gen": {
		const [alg, kid, priv, pub, form] = args;
		const key = await generate(alg, kid);
		writeFileSync(priv, encode(key, form));
		if (pub !== "-") writeFileSync(pub, encode(toPublicKey(key), form));
		break;
	}
	case "sign": {
		const [file, root, put, get, exp] = args;
		const claims = { root };
		if (list(put)) claims.put = list(put);
		if (list(get)) claims.get = list(get);
		if (exp) claims.exp = Number(exp);
		console.log(await sign(load(readFileSync(file, "utf8")), claims));
		break;
	}
	case "verify": {
		const [file, token, root] = args;
		const claims = await verify(loadAny(readFileSync(file, "utf8")), token, root);
		console.log(JSON.stringify(claims));
		break;
	}
	case "reexport": {
		const [file, out] = args;
		writeFileSync(out, JSON.stringify(load(readFileSync(file, "utf8"))));
		break;
	}
	default:
		console.error(`unknown command ${cmd}`);
		process.exit(2);
}
