// Check receive() of client.js against scripted orders of arrival, without a relay: each
// recvGroup() of the fake subscription hands out the next group of the script, so the order
// is exact. A group that comes after a newer one is accepted; a group that is missing or
// that comes twice fails.
// Usage: node receive-selftest.mjs. Prints one JSON line: {ok, cases} or {ok:false, error}.
import * as Moq from "@moq/net";
import { receive, writeTestGroup } from "./client.js";

// A connection whose one track delivers `script` in that order, then ends.
function scriptedConnection(script) {
	return {
		consume: () => ({
			subscribe: () => {
				let next = 0;
				return {
					async recvGroup() {
						if (next >= script.length) return undefined;
						const group = new Moq.Group.Producer(script[next++]);
						writeTestGroup(group);
						return group.consume();
					},
					close() {},
				};
			},
			close() {},
		}),
	};
}

async function outcome(script, groups) {
	try {
		const r = await receive(scriptedConnection(script), "selftest", "data", { groups, announced: false, window: 4 });
		return { ok: true, text: `groups ${r.first}..${r.last} in order of arrival ${r.order}` };
	} catch (err) {
		return { ok: false, text: String(err?.message ?? err) };
	}
}

// [script, groups wanted, expected: true = accepted, or a part of the error message]
const CASES = [
	[[3, 4, 5, 6, 7], 5, true],
	[[14, 16, 15, 17, 18], 5, true],
	[[4, 8, 7, 6, 5, 9], 6, true],
	[[5, 4, 6, 7, 8], 5, true],
	[[14, 16, 17, 18, 19, 20, 21], 5, "group 15 is missing"],
	[[14, 15, 15, 16, 17], 5, "group 15 arrived twice"],
	[[14, 15, 16], 5, "track ended after 3 groups"],
];

const results = [];
for (const [script, groups, expected] of CASES) {
	const got = await outcome(script, groups);
	const pass = expected === true ? got.ok : !got.ok && got.text.includes(expected);
	results.push(`${script.join(",")}: ${got.ok ? "accepted" : "rejected"} (${got.text})`);
	if (!pass) {
		const want = expected === true ? "accepted" : `rejected with "${expected}"`;
		console.log(JSON.stringify({ ok: false, error: `${script.join(",")} should be ${want}: ${got.text}` }));
		process.exit(1);
	}
}
console.log(JSON.stringify({ ok: true, cases: results }));
