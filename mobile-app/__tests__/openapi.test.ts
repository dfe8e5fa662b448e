// The client against the gateway's contract: every path the app calls, every field it sends or reads, and
// every recorded response, checked against gateway/src/gateway/openapi.json.
import * as fs from 'fs';
import * as path from 'path';

import { ENDPOINTS } from '../src/api/client';
import { fixture } from '../test-utils/http';

const SPEC_FILE = path.join(__dirname, '..', '..', 'gateway', 'src', 'gateway', 'openapi.json');
const present = fs.existsSync(SPEC_FILE);
if (!present) {
  console.warn(`skipping the contract tests: ${SPEC_FILE} does not exist yet`);
}

type Schema = {
  $ref?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
};
type Spec = {
  paths: Record<string, Record<string, any>>;
  components: {
    schemas: Record<string, Schema>;
    responses?: Record<string, any>;
    securitySchemes?: Record<string, { in: string; name: string }>;
  };
};

const spec: Spec = present ? JSON.parse(fs.readFileSync(SPEC_FILE, 'utf8')) : { paths: {}, components: { schemas: {} } };

function deref<T extends { $ref?: string }>(node: T): any {
  if (!node.$ref) return node;
  const parts = node.$ref.replace('#/', '').split('/');
  return deref(parts.reduce((at: any, key) => at[key], spec));
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** A small JSON Schema check (the subset the gateway's file uses); returns the problems found. */
function validate(value: unknown, raw: Schema, where = '$'): string[] {
  const schema: Schema = deref(raw);
  const problems: string[] = [];
  if (schema.const !== undefined && value !== schema.const) problems.push(`${where}: not ${schema.const}`);
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${where}: ${value} not in enum`);
  if (schema.type) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    const ok = allowed.includes(actual) || (actual === 'integer' && allowed.includes('number'));
    if (!ok) return [`${where}: ${actual} is not ${allowed.join('|')}`];
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in object)) problems.push(`${where}: missing ${key}`);
    }
    for (const [key, child] of Object.entries(object)) {
      const sub = schema.properties?.[key];
      if (sub) problems.push(...validate(child, sub, `${where}.${key}`));
      else if (schema.additionalProperties && schema.additionalProperties !== true) {
        problems.push(...validate(child, schema.additionalProperties, `${where}.${key}`));
      }
    }
  }
  if (typeOf(value) === 'array' && schema.items) {
    (value as unknown[]).forEach((item, i) => problems.push(...validate(item, schema.items!, `${where}[${i}]`)));
  }
  return problems;
}

function operation(p: string, method: string) {
  const op = spec.paths[p]?.[method];
  if (!op) throw new Error(`${method.toUpperCase()} ${p} is not in the gateway's OpenAPI file`);
  return op;
}

function responseSchema(p: string, method: string, status: number): Schema {
  const response = deref(operation(p, method).responses[String(status)]);
  if (!response) throw new Error(`${method} ${p} does not document ${status}`);
  return response.content['application/json'].schema;
}

function requestFields(p: string, method: string, media: string): string[] {
  const schema = deref(operation(p, method).requestBody.content[media].schema);
  return Object.keys(schema.properties);
}

function properties(name: string): string[] {
  return Object.keys(deref({ $ref: `#/components/schemas/${name}` }).properties);
}

const maybe = present ? describe : describe.skip;

maybe('the gateway OpenAPI contract', () => {
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
      expect.arrayContaining(['search_id', 'k', 'matches', 'no_match', 'threshold', 'image_url', 'heatmap_url']),
    );
    expect(properties('Search')).toEqual(
      expect.arrayContaining(['id', 'created_at', 'k', 'result', 'image_url', 'heatmap_url', 'feedback']),
    );
    expect(properties('SearchResult')).toEqual(expect.arrayContaining(['matches', 'no_match', 'threshold']));
    expect(properties('SearchList')).toEqual(expect.arrayContaining(['searches', 'total', 'offset', 'limit']));
    expect(properties('Feedback')).toEqual(expect.arrayContaining(['person_id', 'correct', 'created_at']));
    expect(properties('Enrolment')).toEqual(expect.arrayContaining(['person', 'faces_added', 'skipped']));
    expect(properties('Error')).toEqual(expect.arrayContaining(['error', 'request_id']));
    // GET /v1/searches/{id} wraps the search: the client unwraps `search`
    expect(deref(responseSchema(ENDPOINTS.search.path, 'get', 200)).required).toEqual(['search']);
  });

  // each recorded response, against the schema of the operation and status it came from
  const recorded: [string, string, string, number][] = [
    ['match_200', ENDPOINTS.match.path, 'post', 200],
    ['match_200_no_match', ENDPOINTS.match.path, 'post', 200],
    ['match_401', ENDPOINTS.match.path, 'post', 401],
    ['match_415', ENDPOINTS.match.path, 'post', 415],
    ['match_422_no_face', ENDPOINTS.match.path, 'post', 422],
    ['searches_200', ENDPOINTS.searches.path, 'get', 200],
    ['search_200', ENDPOINTS.search.path, 'get', 200],
    ['search_404', ENDPOINTS.search.path, 'get', 404],
    ['feedback_201', ENDPOINTS.feedback.path, 'post', 201],
    ['enrol_201_skipped', ENDPOINTS.persons.path, 'post', 201],
    ['enrol_403', ENDPOINTS.persons.path, 'post', 403],
    ['readyz_200', ENDPOINTS.readyz.path, 'get', 200],
  ];
  test.each(recorded)('recorded %s matches %s %s %d', (name, p, method, status) => {
    const record = fixture(name);
    expect(record.status).toBe(status);
    expect(validate(record.body, responseSchema(p, method, status))).toEqual([]);
  });

  test('the validator itself rejects a wrong shape', () => {
    const broken = JSON.parse(JSON.stringify(fixture('match_200').body));
    delete broken.search_id;
    broken.matches[0].similarity = 'high';
    const problems = validate(broken, responseSchema(ENDPOINTS.match.path, 'post', 200));
    expect(problems).toEqual(['$: missing search_id', '$.matches[0].similarity: string is not number']);
  });
});
