import { ApiError, createClient } from '../src/api/client';
import type { MatchResponse, SearchList } from '../src/api/types';
import { body, FakeXHR, fixture, installFakeXHR, mockFetch, responseOf } from '../test-utils/http';

const BASE = 'http://gateway.test:8080/';
const photo = { uri: 'file:///tmp/q.jpg', name: 'q.jpg', type: 'image/jpeg' };

function client() {
  return createClient({ baseUrl: BASE, apiKey: 'search-key-1', timeoutMs: 200 });
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected the call to fail');
}

describe('JSON calls', () => {
  test('history: the key header, the page query, the recorded list', async () => {
    const calls = mockFetch(() => responseOf(fixture('searches_200')));
    const page = await client().listSearches(20, 10);
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('http://gateway.test:8080/v1/searches?offset=20&limit=10');
    expect((calls[0].init.headers as Record<string, string>)['X-API-Key']).toBe('search-key-1');
    expect(page).toEqual(body<SearchList>('searches_200'));
    const times = page.searches.map((s) => s.created_at);
    expect(times).toEqual([...times].sort((a, b) => b - a)); // newest first
    expect(page.searches.map((s) => s.result.no_match)).toEqual([true, false]);
  });

  test('one stored search: the id goes in the path, encoded', async () => {
    const calls = mockFetch(() => responseOf(fixture('search_200')));
    const search = await client().getSearch('a/b');
    expect(calls[0].url).toBe('http://gateway.test:8080/v1/searches/a%2Fb');
    expect(search.feedback?.[0].correct).toBe(true);
  });

  test('the error envelope becomes an ApiError with code, status and request id', async () => {
    mockFetch(() => responseOf(fixture('search_404')));
    const error = await rejection(client().getSearch('0'.repeat(32)));
    expect(error.code).toBe('not_found');
    expect(error.status).toBe(404);
    expect(error.requestId).toBe((fixture('search_404').body as { request_id: string }).request_id);
  });

  test('a non-JSON error page still gives a readable error', async () => {
    mockFetch(() => new Response('<html>Bad gateway</html>', { status: 502 }));
    const error = await rejection(client().listSearches());
    expect(error.code).toBe('http_error');
    expect(error.status).toBe(502);
    expect(error.message).toContain('502');
  });

  test('Retry-After is kept for the busy message', async () => {
    mockFetch(
      () =>
        new Response(JSON.stringify({ error: { code: 'rate_limited', message: 'slow down' }, request_id: 'r' }), {
          status: 429,
          headers: { 'Retry-After': '7' },
        }),
    );
    const error = await rejection(client().listSearches());
    expect([error.code, error.retryAfterS]).toEqual(['rate_limited', 7]);
  });

  test('feedback: POST with the JSON body of the API', async () => {
    const calls = mockFetch(() => responseOf(fixture('feedback_201')));
    await client().sendFeedback('abc', { person_id: 'p1', correct: false });
    expect(calls[0].url).toBe('http://gateway.test:8080/v1/searches/abc/feedback');
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ person_id: 'p1', correct: false });
    expect((calls[0].init.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  test('no network: network_error', async () => {
    mockFetch(() => Promise.reject(new TypeError('Network request failed')));
    expect((await rejection(client().listSearches())).code).toBe('network_error');
  });

  test('a gateway that never answers: timeout, not a frozen promise', async () => {
    mockFetch(
      ({ init }) =>
        new Promise<Response>((_, reject) =>
          init.signal?.addEventListener('abort', () => reject(new Error('aborted'))),
        ),
    );
    expect((await rejection(client().listSearches())).code).toBe('timeout');
  });

  test('readyz: ready, not ready with the reason, unreachable', async () => {
    mockFetch(() => responseOf(fixture('readyz_200')));
    expect((await client().readyz()).ready).toBe(true);
    mockFetch(
      () =>
        new Response(JSON.stringify({ error: { code: 'not_ready', message: 'ai-server unavailable' }, request_id: 'r' }), {
          status: 503,
        }),
    );
    const notReady = await client().readyz();
    expect(notReady.ready).toBe(false);
    expect(notReady.detail).toContain('ai-server unavailable');
    mockFetch(() => Promise.reject(new TypeError('Network request failed')));
    expect((await rejection(client().readyz())).code).toBe('network_error');
  });

  test('links from the gateway resolve against the configured address', () => {
    const c = client();
    expect(c.resolve('/v1/searches/x/image')).toBe('http://gateway.test:8080/v1/searches/x/image');
    expect(c.resolve('https://cdn.test/a.jpg')).toBe('https://cdn.test/a.jpg');
    expect(c.imageHeaders()).toEqual({ 'X-API-Key': 'search-key-1' });
  });
});

describe('uploads', () => {
  const NodeFormData = global.FormData;
  beforeEach(installFakeXHR);
  afterEach(() => {
    global.FormData = NodeFormData;
  });
  // the phone's FormData (file parts are {uri, name, type} objects), except in the web test
  const useNativeFormData = () => {
    global.FormData = jest.requireActual('react-native/Libraries/Network/FormData').default;
  };

  test('on the web the picked File is sent as the image part', async () => {
    const file = new Blob([new Uint8Array([0xff, 0xd8, 0xff])], { type: 'image/jpeg' });
    const pending = client().match({ ...photo, file }, 3);
    const xhr = FakeXHR.last!;
    const image = xhr.fields()[0][1] as Blob;
    expect(image.size).toBe(3);
    expect(image.type).toBe('image/jpeg');
    xhr.respond(fixture('match_200'));
    await pending;
  });

  test('match: multipart image, k and explain; progress; the recorded answer', async () => {
    useNativeFormData();
    const progress: number[] = [];
    const pending = client().match(photo, 5, { onProgress: (p) => progress.push(p) });
    const xhr = FakeXHR.last!;
    expect([xhr.method, xhr.url]).toEqual(['POST', 'http://gateway.test:8080/v1/match']);
    expect(xhr.headers['X-API-Key']).toBe('search-key-1');
    const fields = xhr.fields();
    expect(fields.map(([name]) => name)).toEqual(['image', 'k', 'explain']);
    expect(fields[0][1]).toEqual(photo);
    expect(fields[1][1]).toBe('5');
    xhr.progress(50, 200);
    xhr.progress(200, 200);
    xhr.respond(fixture('match_200'));
    const result = await pending;
    expect(progress).toEqual([0.25, 1]);
    expect(result).toEqual(body<MatchResponse>('match_200'));
    expect(result.matches).toHaveLength(5);
  });

  test('no face in the photo: the recorded 422 envelope', async () => {
    const pending = client().match(photo, 5);
    FakeXHR.last!.respond(fixture('match_422_no_face'));
    const error = await rejection(pending);
    expect([error.code, error.status]).toEqual(['no_face_found', 422]);
  });

  test('a wrong key: the recorded 401', async () => {
    const pending = client().match(photo, 5);
    FakeXHR.last!.respond(fixture('match_401'));
    expect((await rejection(pending)).code).toBe('unauthorized');
  });

  test('cancel aborts the request', async () => {
    const controller = new AbortController();
    const pending = client().match(photo, 5, { signal: controller.signal });
    controller.abort();
    expect(FakeXHR.last!.aborted).toBe(true);
    expect((await rejection(pending)).code).toBe('cancelled');
  });

  test('network failure and timeout are told apart', async () => {
    const failed = client().match(photo, 5);
    FakeXHR.last!.fail();
    expect((await rejection(failed)).code).toBe('network_error');
    const slow = client().match(photo, 5);
    expect(FakeXHR.last!.timeout).toBeGreaterThan(0);
    FakeXHR.last!.expire();
    expect((await rejection(slow)).code).toBe('timeout');
  });

  test('enrol: name, metadata JSON and every photo; skipped photos come back', async () => {
    useNativeFormData();
    const photos = [photo, { ...photo, name: 'b.jpg' }, { ...photo, name: 'blank.jpg' }];
    const pending = client().enrol('Ana', { last_seen: '2026-11-01' }, photos);
    const xhr = FakeXHR.last!;
    expect(xhr.url).toBe('http://gateway.test:8080/v1/persons');
    const fields = xhr.fields();
    expect(fields.map(([name]) => name)).toEqual(['name', 'metadata', 'image', 'image', 'image']);
    expect(JSON.parse(fields[1][1] as string)).toEqual({ last_seen: '2026-11-01' });
    xhr.respond(fixture('enrol_201_skipped'));
    const enrolment = await pending;
    expect(enrolment.faces_added).toBe(2);
    expect(enrolment.skipped).toEqual([expect.objectContaining({ index: 2 })]);
  });

  test('enrol with a search key: the recorded 403', async () => {
    useNativeFormData();
    const pending = client().enrol('Ana', {}, [photo]);
    const xhr = FakeXHR.last!;
    expect(xhr.fields().map(([name]) => name)).toEqual(['name', 'image']);
    xhr.respond(fixture('enrol_403'));
    expect((await rejection(pending)).code).toBe('forbidden');
  });
});
