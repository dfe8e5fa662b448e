// What to tell a person when a call fails: plain words and what they can do about it.
import { ApiError } from './client';

export interface Problem {
  title: string;
  detail: string;
  /** true when trying the same thing again may work */
  retryable: boolean;
}

export function describeError(error: unknown): Problem {
  if (!(error instanceof ApiError)) {
    return { title: 'Something went wrong', detail: 'An unexpected error happened.', retryable: true };
  }
  switch (error.code) {
    case 'network_error':
      return {
        title: 'No connection to the gateway',
        detail: 'Check your internet connection and the gateway address in Settings, then try again.',
        retryable: true,
      };
    case 'timeout':
      return {
        title: 'The network is too slow',
        detail: 'The gateway did not answer in time. Try again, ideally on a faster connection.',
        retryable: true,
      };
    case 'cancelled':
      return { title: 'Upload cancelled', detail: 'Nothing was searched.', retryable: true };
    case 'not_configured':
      return {
        title: 'The app is not set up yet',
        detail: 'Enter the gateway address and your API key in Settings.',
        retryable: false,
      };
    case 'unauthorized':
    case 'invalid_api_key':
    case 'missing_api_key':
      return {
        title: 'The API key was refused',
        detail: 'Check the API key in Settings.',
        retryable: false,
      };
    case 'forbidden':
      return {
        title: 'Not allowed with this key',
        detail: 'This needs a key with more rights: enrolling needs an enrol key (Settings).',
        retryable: false,
      };
    case 'quota_exceeded':
      return {
        title: 'This key has used its quota',
        detail: `${error.message} Ask the operator if you need more.`,
        retryable: false,
      };
    case 'no_face_found':
      return {
        title: 'No face found in this photo',
        detail: 'Use a photo where the face is clearly visible, facing the camera, and not too small.',
        retryable: false,
      };
    case 'image_too_large':
    case 'unsupported_media_type':
    case 'invalid_image':
      return { title: 'This photo cannot be used', detail: error.message, retryable: false };
    case 'rate_limited':
    case 'overloaded':
    case 'ai_unavailable':
    case 'not_ready':
      return {
        title: 'The service is busy or starting',
        detail:
          error.retryAfterS !== undefined
            ? `Please try again in ${Math.ceil(error.retryAfterS)} seconds.`
            : 'Please try again in a moment.',
        retryable: true,
      };
    default:
      if (error.status === 401) {
        return { title: 'The API key was refused', detail: 'Check the API key in Settings.', retryable: false };
      }
      if (error.status === 403) {
        return {
          title: 'Not allowed with this key',
          detail: 'This needs a key with more rights: enrolling needs an enrol key (Settings).',
          retryable: false,
        };
      }
      return {
        title: error.status >= 500 ? 'The service had a problem' : 'The request was refused',
        detail: error.message,
        retryable: error.status >= 500 || error.status === 429 || error.status === 0,
      };
  }
}

/** How a candidate is presented: the only three ways the app can say what a candidate is. */
export type Verdict = 'likely' | 'possible' | 'not_a_match';

export const VERDICT_WORDS: Record<Verdict, string> = {
  likely: 'Likely the person',
  possible: 'Possible match',
  not_a_match: 'Not a reliable match',
};

/** The confidence from which a possible match reads as likely (never below the operator's level). */
export const LIKELY_CONFIDENCE = 0.9;

export interface CandidateWords {
  verdict: Verdict;
  /** the probability in whole percent (rounded down); only for a calibrated candidate presented as a match */
  percent: number | null;
  /** what the card shows, e.g. "Possible match · 62%" */
  text: string;
  /** the same words for a screen reader, e.g. "Possible match, 62 percent" */
  label: string;
}

/**
 * The one rule for what a candidate is called, from the search's own decision.
 * - The search says no match: nobody is a match, whatever the numbers.
 * - A search calibration (`minConfidence` and the candidate's `confidence` both numbers): likely at
 *   max(0.9, minConfidence), possible at minConfidence, otherwise not a match; the percentage only with
 *   likely or possible.
 * - Otherwise (a model without a search calibration, or a search stored before `min_confidence`, whose
 *   confidence was a pair probability and means something else): the similarity against `threshold`,
 *   possible at most, and no percentage.
 */
export function candidateWords(
  confidence: number | null,
  similarity: number,
  minConfidence: number | null | undefined,
  threshold: number | null,
  noMatch: boolean,
): CandidateWords {
  const level = minConfidence ?? null;
  const calibrated = confidence !== null && level !== null;
  let verdict: Verdict = 'not_a_match';
  if (!noMatch && calibrated) {
    if (confidence >= Math.max(LIKELY_CONFIDENCE, level)) verdict = 'likely';
    else if (confidence >= level) verdict = 'possible';
  } else if (!noMatch && threshold !== null && similarity >= threshold) {
    verdict = 'possible';
  }
  // rounded down, so a 0.899 "possible" never reads as the 90% of "likely"; 1e-9: 0.57 * 100 is 56.99...
  const percent = calibrated && verdict !== 'not_a_match' ? Math.floor(confidence * 100 + 1e-9) : null;
  const words = VERDICT_WORDS[verdict];
  return {
    verdict,
    percent,
    text: percent === null ? words : `${words} · ${percent}%`,
    label: percent === null ? words : `${words}, ${percent} percent`,
  };
}

/** What a search result needs for its words (a fresh match, the app's Results, or a stored search's result). */
export interface Decided {
  matches: { name: string | null; similarity: number; confidence: number | null }[];
  no_match: boolean;
  /** absent in searches stored before the gateway recorded it */
  min_confidence?: number | null;
  threshold: number | null;
}

export interface ResultWords {
  /** true when nobody is presented as a match: the "No reliable match" banner */
  noMatch: boolean;
  /** the words of each candidate, in the order of `matches` */
  candidates: CandidateWords[];
  /** the heading over the candidates; null when the result lists none */
  heading: string | null;
  /** the history list's one line */
  summary: string;
}

export const NO_MATCH_WORDS = 'No reliable match';
export const CLOSEST_HEADING = 'Closest people — not a match';

/** A whole result in words, every candidate by `candidateWords`, so the banner and the cards cannot disagree. */
export function resultWords(result: Decided): ResultWords {
  const candidates = result.matches.map((m) =>
    candidateWords(m.confidence, m.similarity, result.min_confidence, result.threshold, result.no_match),
  );
  const best = candidates.findIndex((c) => c.verdict !== 'not_a_match');
  const noMatch = best < 0;
  let heading: string | null = null;
  if (result.matches.length > 0) heading = noMatch ? CLOSEST_HEADING : `Top ${result.matches.length} people`;
  const name = noMatch ? '' : (result.matches[best].name ?? 'deleted person');
  return {
    noMatch,
    candidates,
    heading,
    summary: noMatch ? NO_MATCH_WORDS : `${VERDICT_WORDS[candidates[best].verdict]}: ${name}`,
  };
}
