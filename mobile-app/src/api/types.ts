// Shapes of the gateway's public API v1 (gateway/src/gateway/openapi.json). Only the fields the app
// reads are typed; __tests__/openapi.test.ts checks them against the gateway's OpenAPI file.

export interface ErrorEnvelope {
  error: { code: string; message: string };
  request_id?: string;
}

export interface Match {
  rank: number;
  person_id: string;
  name: string;
  metadata?: Record<string, unknown>;
  similarity: number;
  /** calibrated probability that it is the same person; null when the model has no calibration */
  confidence: number | null;
  face_id: number;
  thumbnail_url: string;
}

export interface MatchResult {
  search_id: string;
  k: number;
  matches: Match[];
  no_match: boolean;
  threshold: number | null;
  image_url?: string | null;
  heatmap_url?: string | null;
  created_at?: string | number;
}

export interface SearchSummary {
  search_id: string;
  created_at: string | number;
  no_match?: boolean;
  k?: number;
  top_match?: { name: string; similarity: number } | null;
}

export interface SearchPage {
  searches: SearchSummary[];
  next_offset: number | null;
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
