// Test doubles for the two transports the client uses: fetch (JSON calls) and XMLHttpRequest (uploads).
import * as fs from 'fs';
import * as path from 'path';

export interface Recorded {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** A real gateway response recorded by e2e/record_fixtures.py. */
export function fixture(name: string): Recorded {
  const file = path.join(__dirname, '..', '__tests__', 'fixtures', `${name}.json`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Recorded;
}

export function body<T>(name: string): T {
  return fixture(name).body as T;
}

export function responseOf(recorded: Recorded): Response {
  const text = recorded.body === null ? '' : JSON.stringify(recorded.body);
  return new Response(text, { status: recorded.status, headers: recorded.headers });
}

export interface FetchCall {
  url: string;
  init: RequestInit;
}

/** Replace global fetch with one that answers each call from `answer`, and records the calls. */
export function mockFetch(answer: (call: FetchCall) => Promise<Response> | Response): FetchCall[] {
  const calls: FetchCall[] = [];
  global.fetch = jest.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const call = { url: String(input), init };
    calls.push(call);
    return answer(call);
  }) as unknown as typeof fetch;
  return calls;
}

type Handler = ((event: ProgressEvent) => void) | null;

/** An XMLHttpRequest that records what was sent and lets the test drive progress and the answer. */
export class FakeXHR {
  static last: FakeXHR | null = null;
  method = '';
  url = '';
  headers: Record<string, string> = {};
  body: unknown = null;
  timeout = 0;
  status = 0;
  responseText = '';
  responseHeaders: Record<string, string> = {};
  aborted = false;
  upload: { onprogress: Handler } = { onprogress: null };
  onload: Handler = null;
  onerror: Handler = null;
  ontimeout: Handler = null;
  onabort: Handler = null;

  constructor() {
    FakeXHR.last = this;
  }

  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }

  getResponseHeader(name: string): string | null {
    const key = Object.keys(this.responseHeaders).find((k) => k.toLowerCase() === name.toLowerCase());
    return key ? this.responseHeaders[key] : null;
  }

  send(body: unknown) {
    this.body = body;
  }

  abort() {
    this.aborted = true;
    this.onabort?.({} as ProgressEvent);
  }

  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total } as ProgressEvent);
  }

  respond(recorded: Recorded) {
    this.status = recorded.status;
    this.responseHeaders = recorded.headers;
    this.responseText = recorded.body === null ? '' : JSON.stringify(recorded.body);
    this.onload?.({} as ProgressEvent);
  }

  fail() {
    this.onerror?.({} as ProgressEvent);
  }

  expire() {
    this.ontimeout?.({} as ProgressEvent);
  }

  /** The multipart fields that were sent, as [name, value] pairs. */
  fields(): [string, unknown][] {
    const form = this.body as FormData & { _parts?: [string, unknown][] };
    if (form._parts) return form._parts; // React Native's FormData
    return Array.from((form as unknown as Iterable<[string, unknown]>) ?? []);
  }
}

export function installFakeXHR() {
  FakeXHR.last = null;
  (global as unknown as { XMLHttpRequest: unknown }).XMLHttpRequest = FakeXHR;
}
