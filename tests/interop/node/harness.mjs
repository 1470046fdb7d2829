// Shared helpers for the @moq/net interop scenarios (scenarios.mjs): Node shims, connecting
// over WebSocket (optionally pinning one moq-lite version), deterministic frame contents,
// named steps with timeouts, and a track reader that checks every byte.
import WebSocket from "ws";
import QmuxSession from "@moq/qmux";
import * as Moq from "@moq/net";

// Node 20 lacks three things @moq/net 0.3.4 uses that Node 22 has: a global WebSocket (its
// qmux transport dials through globalThis.WebSocket), Promise.withResolvers (connect() and
// the qmux session) and Set.prototype.difference (a publisher's announce loop: without it
// the loop throws when a broadcast is added or removed, and the relay sees the announce
// stream reset instead of an update). All are looked up only when used, so installing them
// here, before any connect, is enough.
if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WebSocket;
if (typeof Set.prototype.difference !== "function") {
    Object.defineProperty(Set.prototype, "difference", {
        configurable: true,
        writable: true,
        value: function difference(other) {
            const out = new Set();
            for (const v of this) if (!other.has(v)) out.add(v);
            return out;
        },
    });
}
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve;
        let reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

// @moq/net is chatty on console.debug (stdout); keep it for MOQ_NODE_DEBUG=1 only.
if (!process.env.MOQ_NODE_DEBUG) console.debug = () => {};
else console.debug = (...args) => console.error("[debug]", ...args);

export { Moq };

export class Failure extends Error {}

export function fail(msg) {
    throw new Failure(msg);
}

export function assert(cond, msg) {
    if (!cond) fail(msg);
}

// Readers created by readTrack, summarised when a step times out.
const readers = [];

function summary() {
    return readers
        .map((r) => {
            const groups = [...r.groups].map(([q, n]) => `${q}:${n}${r.complete.has(q) ? "" : r.resets.has(q) ? "R" : "+"}`);
            return `  ${r.name}: first=${r.first} ended=${r.ended ?? "no"} groups(seq:frames, + open, R reset)=${groups.join(" ")}`;
        })
        .join("\n");
}

/**
 * A step's limit only catches a hang: it is given MOQ_STEP_SCALE (default 3) times the time
 * the step takes on an idle machine, for loaded machines and sanitizer builds.
 */
const STEP_SCALE = Number(process.env.MOQ_STEP_SCALE) || 3;

/** Await `promise`, failing with the step's name if it takes longer than `ms` (scaled). */
export async function step(name, promise, ms = 10000) {
    ms *= STEP_SCALE;
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => {
            const state = summary();
            reject(new Failure(`timed out after ${ms} ms: ${name}${state ? `\n${state}` : ""}`));
        }, ms);
    });
    try {
        return await Promise.race([promise, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

/**
 * Connect to the relay. Node has no WebTransport, so @moq/net can only take its WebSocket
 * (qmux) path. Without `version` the client offers everything it knows and the relay picks;
 * with `version` (e.g. "moq-lite-04") the qmux session offers only that application protocol,
 * handed to connect() through its documented `transport` option.
 */
const PINNED_WIRE = { "moqt-18": "qmux-01", "moqt-20": "qmux-01" };
const sessions = new WeakMap(); // connection -> its QmuxSession, when connect() made one

// The version a pinned protocol negotiates when it is not named after one: "moql" carries the
// compat SETUP, in which the relay picks the client's first offer it allows: moq-lite-02 (as
// upstream), or moq-transport-14 from a relay configured without moq-lite-01/02 (the suite
// says so in MOQL_VERSION); the IETF ALPNs each pin a draft.
const VERSION_OF_PROTOCOL = {
    moql: process.env.MOQL_VERSION || "moq-lite-02",
    "moq-00": "moq-transport-14",
    ...Object.fromEntries([15, 16, 17, 18, 19, 20].map((d) => [`moqt-${d}`, `moq-transport-${d}`])),
};

export async function connect(url, version, wire) {
    const u = new URL(url);
    let conn;
    if (!version) {
        conn = await Moq.Connection.connect(u);
    } else {
        // `wire` ("qmux-00", "qmux-01", "qmux-02") pins the QMux framing too; the default
        // offers all three and the relay chooses, except for the drafts @moq/net's own
        // connect() pins to qmux-01 (18 and 20), which get that pin here too.
        const session = new QmuxSession(u, {
            protocols: [version],
            versions: { [version]: wire ?? PINNED_WIRE[version] ?? null },
            requireProtocol: true,
        });
        await session.ready;
        conn = await Moq.Connection.connect(u, { transport: session });
        sessions.set(conn, session);
    }
    if (conn.transport !== "websocket") fail(`expected a WebSocket session, got ${conn.transport}`);
    const expected = VERSION_OF_PROTOCOL[version] ?? version;
    if (version && conn.version !== expected) fail(`negotiated ${conn.version}, wanted ${expected}`);
    return conn;
}

/**
 * How the relay ended a connection made with a pinned `version`: its QMux close code and
 * reason ({ closeCode, reason }), or { error } when the session dropped without a close
 * record. (@moq/net's own `closed` settles without them.)
 */
export async function closeInfo(conn) {
    const session = sessions.get(conn);
    if (!session) fail("closeInfo needs a connection made with a pinned version");
    return await session.closed.then(
        (info) => ({ closeCode: info?.closeCode, reason: info?.reason }),
        (err) => ({ error: err?.message ?? String(err) }),
    );
}

/** A unique broadcast path per run, so scenarios never see each other's broadcasts. */
export function uniquePath(...parts) {
    const id = `${process.pid.toString(36)}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    return Moq.Path.from(...parts, id);
}

// ---- deterministic frames ---------------------------------------------------------------

// Sizes cycle per group: empty, tiny, odd, one qmux record exactly, several records.
const SIZES = [0, 1, 13, 255, 4096, 16382, 40000];
// Every fifth group also carries a frame larger than a qmux stream window (256 KiB), so any
// five consecutive groups include one.
const BIG_SIZE = 300000;

function seedOf(text) {
    let h = 2166136261;
    for (let i = 0; i < text.length; i++) {
        h ^= text.charCodeAt(i);
        h = Math.imul(h, 16777619);
    }
    return h >>> 0 || 1;
}

/** The payload of frame `index` of group `seq` on `track`: binary, never ASCII-only. */
export function payload(track, seq, index, sizes) {
    const n = sizesOf(seq, sizes)[index];
    const out = new Uint8Array(n);
    let x = seedOf(`${track}/${seq}/${index}`);
    for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = x & 0xff;
    }
    return out;
}

/**
 * Frame sizes of group `seq` (at least four frames, the first rotated through SIZES). The
 * functions below take an optional `sizes` instead: a list used for every group (scenarios
 * that want many light groups), or a function of the sequence.
 */
export function frameSizes(seq) {
    const sizes = [];
    for (let i = 0; i < 4 + (seq % 3); i++) sizes.push(SIZES[(seq + i) % SIZES.length]);
    if (seq % 5 === 2) sizes.push(BIG_SIZE);
    return sizes;
}

function sizesOf(seq, sizes) {
    if (typeof sizes === "function") return sizes(seq);
    return sizes ?? frameSizes(seq);
}

/** Presentation time of a frame in ms: not monotonic, so lite-05 carries negative deltas. */
export function timestampMs(seq, index) {
    return seq * 1000 + [0, 40, 20, 60, 10, 80, 30, 70][index % 8];
}

/** Write group `seq` of `track` completely and close it. */
export function writeGroup(trackProducer, seq, sizes) {
    const group = trackProducer.appendGroup();
    if (group.sequence !== seq) fail(`publisher made group ${group.sequence}, expected ${seq}`);
    const n = sizesOf(seq, sizes).length;
    for (let i = 0; i < n; i++) writeFrame(group, trackProducer.name, seq, i, sizes);
    group.close();
}

export function writeFrame(group, track, seq, index, sizes) {
    group.writeFrame({
        payload: payload(track, seq, index, sizes),
        timestamp: Moq.Time.Timestamp.fromMillis(timestampMs(seq, index)),
    });
}

function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
}

/** Check one received frame against what the publisher wrote. */
export function checkFrame(track, seq, index, frame, checkTimestamps, sizes) {
    const want = payload(track, seq, index, sizes);
    if (!sameBytes(frame.payload, want))
        fail(`${track} group ${seq} frame ${index}: ${frame.payload.length} bytes differ from the ` +
            `${want.length} published`);
    if (checkTimestamps) {
        const got = frame.timestamp.asMillis();
        const ts = timestampMs(seq, index);
        if (Math.abs(got - ts) > 1e-6)
            fail(`${track} group ${seq} frame ${index}: timestamp ${got} ms, published ${ts} ms`);
    }
}

/**
 * Read every group a subscriber receives, checking every frame, until `until()` says the
 * reader has seen enough. Groups are read concurrently (each is its own stream).
 * Returns { groups: Map(seq -> frames read), first: first sequence received, done }.
 */
export function readTrack(subscriber, { timestamps = false, sizes } = {}) {
    const state = {
        name: subscriber.name,
        groups: new Map(), // seq -> frames read so far
        complete: new Set(), // seqs whose group ended cleanly
        resets: new Map(), // seq -> why the group ended early
        first: undefined,
        ended: undefined, // set when recvGroup returns undefined or throws
        error: undefined,
        waiters: [],
    };
    const wake = () => {
        for (const w of state.waiters.splice(0)) w();
    };
    state.changed = () => new Promise((resolve) => state.waiters.push(resolve));
    readers.push(state);
    const readGroup = async (group) => {
        const seq = group.sequence;
        state.groups.set(seq, 0);
        try {
            for (let i = 0; ; i++) {
                const frame = await group.readFrame();
                if (!frame) break;
                checkFrame(subscriber.name, seq, i, frame, timestamps, sizes);
                state.groups.set(seq, i + 1);
                wake();
            }
            const want = sizesOf(seq, sizes).length;
            if (state.groups.get(seq) !== want)
                fail(`${subscriber.name} group ${seq} ended after ${state.groups.get(seq)} of ${want} frames`);
            state.complete.add(seq);
        } catch (err) {
            // A wrong byte is a failure at once; a reset group (the publisher went away, or
            // the relay dropped it) is recorded, and fails a wait that needs the group.
            if (err instanceof Failure) state.error ??= err;
            else state.resets.set(seq, err?.message ?? String(err));
        }
        wake();
    };
    state.done = (async () => {
        try {
            for (;;) {
                const group = await subscriber.recvGroup();
                if (!group) break;
                if (state.first === undefined) state.first = group.sequence;
                void readGroup(group);
                wake();
            }
            state.ended = "finished";
        } catch (err) {
            state.ended = `error: ${err?.message ?? err}`;
        }
        wake();
    })();
    return state;
}

/** Wait until `pred(state)` holds; fail early on a frame mismatch. */
export async function until(state, pred) {
    for (;;) {
        if (state.error) throw state.error;
        if (pred(state)) return;
        await state.changed();
    }
}

/**
 * Keep writing groups on every track of `tracks` until every reader in `readers` has received
 * at least one group (so every subscription is live end to end), then return the next
 * sequence number: groups from there on are the ones every subscriber must get in full.
 * Groups are written every 20 ms: pacing of production, not a wait for synchronisation.
 */
export async function warmUp(tracks, readers, name = "warm-up", sizes) {
    let seq = 0;
    const live = () => readers.every((r) => r.first !== undefined);
    await step(name, (async () => {
        while (!live()) {
            for (const t of tracks) writeGroup(t, seq, sizes);
            seq++;
            for (const r of readers) if (r.error) throw r.error;
            await new Promise((resolve) => setTimeout(resolve, 20));
        }
    })(), 15000);
    return seq;
}

/** Resolve when `announced` yields `{path, active}` (skipping other paths). */
export async function nextAnnouncement(announced, path, active) {
    for (;;) {
        const ev = await announced.next();
        if (!ev) fail(`announcement stream ended while waiting for ${path} active=${active}`);
        if (ev.path === path) {
            if (ev.active !== active) fail(`${path}: announced active=${ev.active}, wanted ${active}`);
            return ev;
        }
    }
}
