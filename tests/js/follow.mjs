// Follows a taskstream event stream with the npm `eventsource` package (a WHATWG
// EventSource for Node), as a third-party program would, and reports on stdout one JSON
// line per thing that happened:
//   {"kind":"connect","last_event_id":"57"}   a request (its Last-Event-ID, "" if none)
//   {"kind":"open"} / {"kind":"error","message":...}
//   {"kind":"event","type":"execution.log","id":"58"}  an event (its lastEventId)
// Usage: TASKSTREAM_COOKIE='sessionid=...' node follow.mjs URL TYPE...
// (TYPE: the event names to listen to; an EventSource has no wildcard listener.)
// It exits when its stdin closes.
import { EventSource } from "eventsource";

const [url, ...types] = process.argv.slice(2);
const cookie = process.env.TASKSTREAM_COOKIE ?? "";
const report = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

const source = new EventSource(url, {
  // The session cookie on every request, reconnections included.
  fetch: (input, init) => {
    const headers = { ...init.headers, Cookie: cookie };
    report({ kind: "connect", last_event_id: headers["Last-Event-ID"] ?? "" });
    return fetch(input, { ...init, headers });
  },
});
source.addEventListener("open", () => report({ kind: "open" }));
source.addEventListener("error", (event) =>
  report({ kind: "error", message: String(event.message ?? ""), code: event.code ?? null }),
);
for (const type of types) {
  source.addEventListener(type, (event) =>
    report({ kind: "event", type: event.type, id: event.lastEventId }),
  );
}

process.stdin.resume();
process.stdin.on("end", () => {
  source.close();
  process.exit(0);
});
