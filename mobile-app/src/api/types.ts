// The app's names for the gateway's API v1 shapes. The shapes themselves are generated from
// gateway/src/gateway/openapi.json into ./schema.d.ts (`npm run gen:api`); only app-side types
// (Results, PhotoFile) are written by hand here.
import type { components, paths } from './schema';

type Schemas = components['schemas'];
type Method = 'get' | 'put' | 'post' | 'delete' | 'patch';

/** The methods the gateway documents for a path (the generator types absent ones as `never`). */
type MethodsOf<P extends keyof paths> = {
  [M in Method]: [NonNullable<paths[P][M]>] extends [never] ? never : M;
}[Method];

/** A path and method that exist in the OpenAPI file: ENDPOINTS in client.ts must be made of these. */
export type Endpoint = { [P in keyof paths]: { method: MethodsOf<P>; path: P } }[keyof paths];

type Operation<E extends Endpoint> = NonNullable<paths[E['path']][E['method']]>;

/** The JSON body an operation answers with for a status; `unknown` (so no typed use compiles) when undocumented. */
export type JsonResponse<E extends Endpoint, S extends number> =
  Operation<E> extends { responses: { [K in S]: { content: { 'application/json': infer Body } } } } ? Body : unknown;

/** The JSON request body of an operation; `never` (nothing can be sent) when undocumented. */
export type JsonRequest<E extends Endpoint> =
  Operation<E> extends { requestBody: { content: { 'application/json': infer Body } } } ? Body : never;

export type ErrorEnvelope = Schemas['Error'];
export type Match = Schemas['Match'];
/** What POST /v1/match answers (the ai-server's result plus the stored search's id and links). */
export type MatchResponse = Schemas['MatchResponse'];
/** A stored search (GET /v1/searches, GET /v1/searches/{id}). */
export type Search = Schemas['Search'];
export type SearchList = Schemas['SearchList'];
/** Feedback as stored with a search (the gateway's `Feedback`). */
export type StoredFeedback = Schemas['Feedback'];
/** Feedback as sent (the gateway's `FeedbackRequest`). */
export type FeedbackRequest = Schemas['FeedbackRequest'];
export type Enrolment = Schemas['Enrolment'];
export type SkippedPhoto = Enrolment['skipped'][number];

/** What the results screen shows, from a fresh match or a stored search. */
export interface Results {
  search_id: string;
  matches: Match[];
  no_match: boolean;
  /** the level no_match was decided by; null without a search calibration and in searches stored before it */
  min_confidence: number | null;
  threshold: number | null;
  /** how many people were enrolled when it was searched */
  gallery_persons: number;
  image_url: string;
  heatmap_url: string | null;
  feedback: StoredFeedback[];
}

/** A photo chosen on the device: `file` is set on the web, `uri` everywhere. */
export interface PhotoFile {
  uri: string;
  name: string;
  type: string;
  file?: Blob;
}

export function fromMatch(response: MatchResponse): Results {
  return {
    search_id: response.search_id,
    matches: response.matches,
    no_match: response.no_match,
    min_confidence: response.min_confidence,
    threshold: response.threshold,
    gallery_persons: response.gallery.persons,
    image_url: response.image_url,
    heatmap_url: response.heatmap_url,
    feedback: [],
  };
}

export function fromSearch(search: Search): Results {
  return {
    search_id: search.id,
    matches: search.result.matches,
    no_match: search.result.no_match,
    min_confidence: search.result.min_confidence ?? null,
    threshold: search.result.threshold,
    gallery_persons: search.result.gallery.persons,
    image_url: search.image_url,
    heatmap_url: search.heatmap_url,
    feedback: search.feedback ?? [],
  };
}
