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
        detail: 'This needs an admin API key.',
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
        return { title: 'Not allowed with this key', detail: 'This needs an admin API key.', retryable: false };
      }
      return {
        title: error.status >= 500 ? 'The service had a problem' : 'The request was refused',
        detail: error.message,
        retryable: error.status >= 500 || error.status === 429 || error.status === 0,
      };
  }
}

export type ConfidenceLevel = 'likely' | 'possible' | 'unlikely';

/** Calibrated confidence in words. Without calibration, similarity against the no-match threshold. */
export function confidenceLevel(
  confidence: number | null,
  similarity: number,
  threshold: number | null,
): ConfidenceLevel {
  if (confidence !== null) {
    if (confidence >= 0.9) return 'likely';
    if (confidence >= 0.5) return 'possible';
    return 'unlikely';
  }
  if (threshold !== null && similarity >= threshold) return 'possible';
  return 'unlikely';
}

export const CONFIDENCE_WORDS: Record<ConfidenceLevel, string> = {
  likely: 'Likely the same person',
  possible: 'Possible',
  unlikely: 'Unlikely',
};
