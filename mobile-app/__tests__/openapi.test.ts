// The client against the gateway's contract: every path the app calls, every field it sends or reads, and
// every recorded response, checked against gateway/src/gateway/openapi.json.
import * as fs from 'fs';
import * as path from 'path';

import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

import { ENDPOINTS } from '../src/api/client';
import { calibrated } from '../test-utils/decisions';
import { fixture } from '../test-utils/http';

const SPEC_FILE = path.join(__dirname, '..', '..', 'gateway', 'src', 'gateway', 'openapi.json');
// The gateway's contract is part of the repository: a missing file is a failure, never a skipped suite.
if (!fs.existsSync(SPEC_FILE)) {
  throw new Error(`${SPEC_FILE} is missing: the app's API contract cannot be checked`);
}

type Spec = {
  paths: Record<string, Record<string, any>>;
  components: {
    schemas: Record<string, object>;
    responses?: Record<string, any>;
    securitySchemes?: Record<string, { in: string; name: string }>;
  };
};

const spec: Spec = JSON.parse(fs.readFileSync(SPEC_FILE, 'utf8'));

/** Follows an OpenAPI `$ref` (a response object, a schema) to read the document's structure. */
function deref<T extends { $ref?: string }>(node: T): any {
  if (!node.$ref) return node;
  const parts = node.$ref.replace('#/', '').split('/');
  return deref(parts.reduce((at: any, key) => at[key], spec));
}

// OpenAPI 3.1 schemas are JSON Schema 2020-12. The whole document is registered under SPEC_ID, so the
// `#/components/schemas/...` refs inside it resolve within it. strict: a keyword ajv does not know fails
// the test instead of being skipped silently, so OpenAPI's own words are declared as annotations: the
// document's top-level fields (ajv compiles the document root when resolving a ref into it) and the
// schema annotations OpenAPI 3.1 adds.
const SPEC_ID = 'https://gateway.invalid/openapi.json';
const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats(ajv);
ajv.addVocabulary(['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components']);
ajv.addVocabulary(['security', 'tags', 'externalDocs', 'example', 'xml']);
ajv.addSchema(spec, SPEC_ID);

/** A `$ref` to a place in the OpenAPI document (JSON Pointer segments, escaped). */
function ref(...segments: string[]) {
  const escaped = segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1')));
  return { $ref: `${SPEC_ID}#/${escaped.join('/')}` };
}

type Problem = { keyword: string; at: string; message?: string };

/** The problems ajv finds in `value` against `schema` (empty when valid). */
function problems(schema: object, value: unknown): Problem[] {
  const check = ajv.compile(schema);
  if (check(value)) return [];
  return (check.errors ?? []).map((e) => ({ keyword: e.keyword, at: e.instancePath, message: e.message }));
}

function operation(p: string, method: string) {
  const op = spec.paths[p]?.[method];
  if (!op) throw new Error(`${method.toUpperCase()} ${p} is not in the gateway's OpenAPI file`);
  return op;
}

/** The schema of an operation's JSON response, as a ref (a shared response object's `$ref` followed). */
function responseSchema(p: string, method: string, status: number) {
  const response = operation(p, method).responses[String(status)];
  if (!response) throw new Error(`${method} ${p} does not document ${status}`);
  const at = response.$ref
    ? response.$ref.replace('#/', '').split('/').map((s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    : ['paths', p, method, 'responses', String(status)];
  return ref(...at, 'content', 'application/json', 'schema');
}

/** The schema of an operation's parameter, as a ref. */
function parameterSchema(p: string, method: string, name: string) {
  const index = (operation(p, method).parameters ?? []).findIndex((q: { name: string }) => q.name === name);
  if (index < 0) throw new Error(`${method} ${p} has no parameter ${name}`);
  return ref('paths', p, method, 'parameters', String(index), 'schema');
}

function requestFields(p: string, method: string, media: string): string[] {
  const schema = deref(operation(p, method).requestBody.content[media].schema);
  return Object.keys(schema.properties);
}

function properties(name: string): string[] {
  return Object.keys(deref({ $ref: `#/components/schemas/${name}` }).properties);
}

/**
 * What the app does with responses beyond reading them, as schemas over the spec's own: ids it sends back
 * must pass the parameter they go into, the page offset it sends back the `offset` query parameter, and the
 * links it resolves against the gateway address must be URI references.
 */
function appUses() {
  const link = { type: 'string', format: 'uri-reference' };
  const maybeLink = { type: ['string', 'null'], format: 'uri-reference' };
  const searchId = parameterSchema(ENDPOINTS.search.path, 'get', 'search_id');
  const match = {
    type: 'object',
    properties: {
      person_id: ref('components', 'schemas', 'FeedbackRequest', 'properties', 'person_id'),
      thumbnail_url: maybeLink,
    },
  };
  const search = {
    type: 'object',
    properties: {
      id: searchId,
      result: { type: 'object', properties: { matches: { type: 'array', items: match } } },
      image_url: link,
      heatmap_url: maybeLink,
    },
  };
  return {
    matchResponse: {
      type: 'object',
      properties: {
        search_id: searchId,
        matches: { type: 'array', items: match },
        image_url: link,
        heatmap_url: maybeLink,
      },
    },
    searchResponse: { type: 'object', properties: { search } },
    searchList: {
      type: 'object',
      properties: {
        searches: { type: 'array', items: search },
        offset: parameterSchema(ENDPOINTS.searches.path, 'get', 'offset'),
      },
    },
  };
}

type Use = keyof ReturnType<typeof appUses>;

/** A recorded response's schema: its operation's response schema and, if given, what the app does with it. */
function recordedSchema(p: string, method: string, status: number, use: Use | null) {
  return { allOf: [responseSchema(p, method, status), use ? appUses()[use] : {}] };
}


describe('the gateway OpenAPI contract', () => {
  test.each(Object.entries(ENDPOINTS))('%s: the path and method exist', (_, { method, path: p }) => {
    expect(() => operation(p, method)).not.toThrow();
  });

  test('the request fields the client sends are documented', () => {
    expect(requestFields(ENDPOINTS.match.path, 'post', 'multipart/form-data')).toEqual(
      expect.arrayContaining(['image', 'k', 'explain']),
    );
    expect(requestFields(ENDPOINTS.persons.path, 'post', 'multipart/form-data')).toEqual(
      expect.arrayContaining(['name', 'metadata', 'image']),
    );
    expect(requestFields(ENDPOINTS.feedback.path, 'post', 'application/json')).toEqual(
      expect.arrayContaining(['person_id', 'correct', 'comment']),
    );
    const query = operation(ENDPOINTS.searches.path, 'get').parameters.map((p: { name: string }) => p.name);
    expect(query).toEqual(expect.arrayContaining(['offset', 'limit']));
    expect(spec.components.securitySchemes?.apiKey).toMatchObject({
      in: 'header',
      name: 'X-API-Key',
    });
  });

  test('the response fields the app reads are documented', () => {
    expect(properties('Match')).toEqual(
      expect.arrayContaining(['rank', 'person_id', 'name', 'metadata', 'similarity', 'confidence', 'face_id', 'thumbnail_url']),
    );
    expect(properties('MatchResponse')).toEqual(
      expect.arrayContaining([
        'search_id', 'k', 'matches', 'no_match', 'min_confidence', 'threshold', 'gallery', 'image_url', 'heatmap_url',
      ]),
    );
    expect(properties('Search')).toEqual(
      expect.arrayContaining(['id', 'created_at', 'k', 'result', 'image_url', 'heatmap_url', 'feedback']),
    );
    expect(properties('SearchResult')).toEqual(
      expect.arrayContaining(['matches', 'no_match', 'min_confidence', 'threshold', 'gallery']),
    );
    expect(properties('SearchList')).toEqual(expect.arrayContaining(['searches', 'total', 'offset', 'limit']));
    expect(properties('Feedback')).toEqual(expect.arrayContaining(['person_id', 'correct', 'created_at']));
    expect(properties('Enrolment')).toEqual(expect.arrayContaining(['person', 'faces_added', 'skipped']));
    expect(properties('Error')).toEqual(expect.arrayContaining(['error', 'request_id']));
    // GET /v1/searches/{id} wraps the search: the client unwraps `search`
    const wrapped = operation(ENDPOINTS.search.path, 'get').responses['200'].content['application/json'].schema;
    expect(deref(wrapped).required).toEqual(['search']);
  });

  // each recorded response, against the schema of the operation and status it came from, and what the app
  // does with it (appUses)
  const recorded: [string, string, string, number, Use | null][] = [
    ['match_200', ENDPOINTS.match.path, 'post', 200, 'matchResponse'],
    ['match_200_no_match', ENDPOINTS.match.path, 'post', 200, 'matchResponse'],
    ['match_401', ENDPOINTS.match.path, 'post', 401, null],
    ['match_415', ENDPOINTS.match.path, 'post', 415, null],
    ['match_422_no_face', ENDPOINTS.match.path, 'post', 422, null],
    ['searches_200', ENDPOINTS.searches.path, 'get', 200, 'searchList'],
    // recorded before searches stored min_confidence: the gateway still serves such searches
    ['searches_200_before_min_confidence', ENDPOINTS.searches.path, 'get', 200, 'searchList'],
    ['search_200', ENDPOINTS.search.path, 'get', 200, 'searchResponse'],
    ['search_404', ENDPOINTS.search.path, 'get', 404, null],
    ['feedback_201', ENDPOINTS.feedback.path, 'post', 201, null],
    ['enrol_201_skipped', ENDPOINTS.persons.path, 'post', 201, null],
    ['enrol_403', ENDPOINTS.persons.path, 'post', 403, null],
    ['readyz_200', ENDPOINTS.readyz.path, 'get', 200, null],
  ];
  test.each(recorded)('recorded %s matches %s %s %d', (name, p, method, status, use) => {
    const record = fixture(name);
    expect(record.status).toBe(status);
    expect(problems(recordedSchema(p, method, status, use), record.body)).toEqual([]);
  });

  test('the calibrated answers the screen tests use are valid /v1/match answers', () => {
    const schema = recordedSchema(ENDPOINTS.match.path, 'post', 200, 'matchResponse');
    expect(problems(schema, calibrated([0.97, 0.62, 0.3]))).toEqual([]);
    expect(problems(schema, calibrated([0.3, 0.2]))).toEqual([]);
  });

  const copy = (name: string): any => JSON.parse(JSON.stringify(fixture(name).body));
  const found = (list: Problem[]) => list.map(({ keyword, at }) => `${keyword} at ${at || '/'}`).sort();

  test('a wrong shape is rejected: a missing required field, a wrong type', () => {
    const broken = copy('match_200');
    delete broken.search_id;
    broken.matches[0].similarity = 'high';
    const schema = recordedSchema(ENDPOINTS.match.path, 'post', 200, 'matchResponse');
    expect(found(problems(schema, broken))).toEqual(['required at /', 'type at /matches/0/similarity']);
  });

  test('minimum, pattern and format are enforced (the old hand-written validator ignored them)', () => {
    const schema = recordedSchema(ENDPOINTS.searches.path, 'get', 200, 'searchList');
    const list = copy('searches_200');
    expect(problems(schema, list)).toEqual([]);
    list.offset = -1; // the offset parameter's minimum 0
    list.searches[0].id = 'F53F4B12-not-hex'; // the search_id parameter's pattern
    list.searches[0].image_url = 'query photo.jpg'; // a space: not a URI reference
    expect(found(problems(schema, list))).toEqual([
      'format at /searches/0/image_url',
      'minimum at /offset',
      'pattern at /searches/0/id',
    ]);
  });

  test('the ajv setup knows OpenAPI formats and refuses keywords it does not know', () => {
    // format "binary" (the upload fields) is OpenAPI's, not JSON Schema's: strict mode would throw without it
    const upload = ['paths', ENDPOINTS.match.path, 'post', 'requestBody', 'content', 'multipart/form-data'];
    const image = ref(...upload, 'schema', 'properties', 'image');
    expect(problems(image, 'bytes')).toEqual([]);
    expect(() => ajv.compile({ type: 'string', minimun: 1 })).toThrow(/unknown keyword: "minimun"/);
  });
});
