// Results in each way a search can be decided. The served model has no search calibration yet, so the recorded
// responses are uncalibrated (confidence null, min_confidence null, a similarity threshold); a calibrated answer
// is a recorded one with the calibration's fields set as gateway/src/gateway/openapi.json documents them:
// every confidence a number, `min_confidence` the level, `threshold` null.
import type { MatchResponse, SearchList } from '../src/api/types';
import { body } from './http';

/** A real recorded /v1/match answer, decided by a search calibration: `confidences` by rank. */
export function calibrated(
  confidences: number[],
  options: { minConfidence?: number; noMatch?: boolean; name?: string } = {},
): MatchResponse {
  const recorded = body<MatchResponse>('match_200');
  const level = options.minConfidence ?? 0.5;
  const matches = confidences.map((confidence, i) => ({
    ...recorded.matches[i],
    ...(i === 0 && options.name ? { name: options.name } : {}),
    confidence,
  }));
  return {
    ...recorded,
    matches,
    min_confidence: level,
    threshold: null,
    // the service's rule unless a test asks for something else
    no_match: options.noMatch ?? !confidences.some((c) => c >= level),
  };
}

/** A real GET /v1/searches answer from the gateway before it stored `min_confidence`. */
export function storedBeforeMinConfidence(): SearchList {
  return body<SearchList>('searches_200_before_min_confidence');
}
