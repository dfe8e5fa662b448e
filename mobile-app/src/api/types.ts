// Shapes of the gateway's public API v1 (gateway/src/gateway/openapi.json). Only the fields the app
// reads are typed; __tests__/openapi.test.ts checks them against the gateway's OpenAPI file.

export interface ErrorEnvelope {
  error: { code: string; message: string };
  request_id?: string;
}

export interface Match {
  rank: number;
  person_id: string;
  /** null in a stored search once the person has been deleted */
  name: string | null;
  metadata?: Record<string, unknown>;
  similarity: number;
  /** calibrated probability that it is the same person; null when the model has no calibration */
  confidence: number | null;
  face_id: number;
  /** gateway path of the matched face's thumbnail; null once deleted */
  thumbnail_url: string | null;
  deleted?: boolean;
}

/** What POST /v1/match answers (the ai-server's result plus the stored search's id and links). */
export interface MatchResponse {
  search_id: string;
  k: number;
  cached?: boolean;
  matches: Match[];
  no_match: boolean;
  threshold: number | null;
  image_url: string;
  heatmap_url: string | null;
}

/** A stored search (GET /v1/searches, GET /v1/searches/{id}). */
export interface Search {
  id: string;
  /** seconds since the epoch */
  created_at: number;
  k: number;
  result: { matches: Match[]; no_match: boolean; threshold: number | null };
  image_url: string;
  heatmap_url: string | null;
  feedback?: StoredFeedback[];
}

export interface SearchList {
  searches: Search[];
  total: number;
  offset: number;
  limit: number;
}

export interface StoredFeedback {
  person_id: string;
  correct: boolean;
  created_at: number;
}

/** What the results screen shows, from a fresh match or a stored search. */
export interface Results {
  search_id: string;
  matches: Match[];
  no_match: boolean;
  threshold: number | null;
  image_url: string;
  heatmap_url: string | null;
  feedback: StoredFeedback[];
}

export interface Feedback {
  person_id: string;
  correct: boolean;
  comment?: string;
}

export interface SkippedPhoto {
  index: number;
  filename?: string;
  error?: { code?: string; message?: string };
}

export interface Enrolment {
  person: { id: string; name: string };
  faces_added: number;
  skipped: SkippedPhoto[];
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
    threshold: response.threshold,
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
    threshold: search.result.threshold,
    image_url: search.image_url,
    heatmap_url: search.heatmap_url,
    feedback: search.feedback ?? [],
  };
}
