// The only module that talks HTTP. Screens and hooks use the GatewayApi interface.
import type {
  Endpoint,
  Enrolment,
  ErrorEnvelope,
  FeedbackRequest,
  JsonRequest,
  JsonResponse,
  MatchResponse,
  PhotoFile,
  Search,
  SearchList,
} from './types';

/** Every path the app calls, as written in the gateway's OpenAPI file (checked by a unit test). */
export const ENDPOINTS = {
  readyz: { method: 'get', path: '/readyz' },
  match: { method: 'post', path: '/v1/match' },
  searches: { method: 'get', path: '/v1/searches' },
  search: { method: 'get', path: '/v1/searches/{search_id}' },
  feedback: { method: 'post', path: '/v1/searches/{search_id}/feedback' },
  persons: { method: 'post', path: '/v1/persons' },
} as const satisfies Record<string, Endpoint>;

// What each call sends and gets back, taken from its operation in the generated schema, so a changed
// response or request body in the gateway's OpenAPI file shows up as a type error here.
type MatchOk = JsonResponse<typeof ENDPOINTS.match, 200>;
type SearchesOk = JsonResponse<typeof ENDPOINTS.searches, 200>;
type SearchOk = JsonResponse<typeof ENDPOINTS.search, 200>;
type FeedbackBody = JsonRequest<typeof ENDPOINTS.feedback>;
type FeedbackOk = JsonResponse<typeof ENDPOINTS.feedback, 201>;
type EnrolOk = JsonResponse<typeof ENDPOINTS.persons, 201>;

export type ClientErrorCode = 'network_error' | 'timeout' | 'cancelled' | 'bad_response' | 'not_configured';

export class ApiError extends Error {
  constructor(
    /** the gateway's error code, or one of ClientErrorCode */
    readonly code: string,
    message: string,
    /** HTTP status; 0 when no response arrived */
    readonly status: number = 0,
    readonly requestId?: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ClientConfig {
  baseUrl: string;
  apiKey: string;
  timeoutMs?: number;
  uploadTimeoutMs?: number;
}

export interface UploadOptions {
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
}

export interface Readiness {
  ready: boolean;
  detail: string;
}

export interface GatewayApi {
  readyz(): Promise<Readiness>;
  match(photo: PhotoFile, k: number, options?: UploadOptions): Promise<MatchResponse>;
  listSearches(offset?: number, limit?: number): Promise<SearchList>;
  getSearch(searchId: string): Promise<Search>;
  sendFeedback(searchId: string, feedback: FeedbackRequest): Promise<void>;
  enrol(
    name: string,
    metadata: Record<string, string>,
    photos: PhotoFile[],
    options?: UploadOptions,
  ): Promise<Enrolment>;
  /** absolute URL of a link the gateway returned (thumbnail, query image, heatmap) */
  resolve(link: string): string;
  /** headers an <Image> needs to load a protected link */
  imageHeaders(): Record<string, string>;
  /** a protected image's bytes (the web's <img> cannot send the API key header) */
  fetchImage(link: string): Promise<Blob>;
}

function trimSlash(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

function fill(path: string, id: string): string {
  return path.replace(/\{[a-z_]+\}/, encodeURIComponent(id));
}

function parseEnvelope(status: number, body: string, retryAfter: string | null): ApiError {
  let code = 'http_error';
  let message = `The gateway answered with HTTP ${status}.`;
  let requestId: string | undefined;
  try {
    const parsed = JSON.parse(body) as Partial<ErrorEnvelope>;
    if (parsed.error && typeof parsed.error.code === 'string') {
      code = parsed.error.code;
      message = parsed.error.message ?? message;
      requestId = parsed.request_id;
    }
  } catch {
    // not JSON (a proxy's error page): keep the generic message
  }
  const retry = retryAfter ? Number(retryAfter) : undefined;
  return new ApiError(code, message, status, requestId, Number.isFinite(retry) ? retry : undefined);
}

function appendPhoto(form: FormData, field: string, photo: PhotoFile): void {
  if (photo.file) {
    form.append(field, photo.file, photo.name);
  } else {
    // React Native's FormData takes a {uri, name, type} object for files
    form.append(field, { uri: photo.uri, name: photo.name, type: photo.type } as unknown as Blob);
  }
}

export function createClient(config: ClientConfig): GatewayApi {
  const base = trimSlash(config.baseUrl);
  const timeoutMs = config.timeoutMs ?? 15_000;
  const uploadTimeoutMs = config.uploadTimeoutMs ?? 60_000;
  const url = (path: string) => base + path;
  const resolve = (link: string) =>
    /^(https?:|data:|blob:)/.test(link) ? link : base + (link.startsWith('/') ? link : `/${link}`);
  const authHeaders = (): Record<string, string> => (config.apiKey ? { 'X-API-Key': config.apiKey } : {});

  async function request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response: Response;
    try {
      response = await fetch(url(path), {
        method,
        headers: {
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...(auth ? authHeaders() : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (e) {
      if (controller.signal.aborted) {
        throw new ApiError('timeout', 'The gateway did not answer in time.');
      }
      throw new ApiError('network_error', 'The gateway could not be reached.');
    } finally {
      clearTimeout(timer);
    }
    const text = await response.text();
    if (!response.ok) {
      throw parseEnvelope(response.status, text, response.headers.get('Retry-After'));
    }
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      throw new ApiError('bad_response', 'The gateway sent a response the app cannot read.', response.status);
    }
  }

  function upload<T>(path: string, form: FormData, options: UploadOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const onAbort = () => xhr.abort();
      const done = () => options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) {
        reject(new ApiError('cancelled', 'The upload was cancelled.'));
        return;
      }
      xhr.open('POST', url(path));
      xhr.timeout = uploadTimeoutMs;
      xhr.setRequestHeader('Accept', 'application/json');
      for (const [name, value] of Object.entries(authHeaders())) {
        xhr.setRequestHeader(name, value);
      }
      if (xhr.upload && options.onProgress) {
        const onProgress = options.onProgress;
        xhr.upload.onprogress = (event) => {
          if (event.lengthComputable && event.total > 0) {
            onProgress(Math.min(1, event.loaded / event.total));
          }
        };
      }
      xhr.onload = () => {
        done();
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve(JSON.parse(xhr.responseText) as T);
          } catch {
            reject(new ApiError('bad_response', 'The gateway sent a response the app cannot read.', xhr.status));
          }
        } else {
          reject(parseEnvelope(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After')));
        }
      };
      xhr.onerror = () => {
        done();
        reject(new ApiError('network_error', 'The gateway could not be reached.'));
      };
      xhr.ontimeout = () => {
        done();
        reject(new ApiError('timeout', 'The gateway did not answer in time.'));
      };
      xhr.onabort = () => {
        done();
        reject(new ApiError('cancelled', 'The upload was cancelled.'));
      };
      options.signal?.addEventListener('abort', onAbort);
      xhr.send(form);
    });
  }

  return {
    async readyz() {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        const response = await fetch(url(ENDPOINTS.readyz.path), { signal: controller.signal });
        const text = await response.text();
        if (response.ok) {
          return { ready: true, detail: 'The gateway and the face search service are ready.' };
        }
        const error = parseEnvelope(response.status, text, null);
        return { ready: false, detail: `The gateway is up but not ready: ${error.message}` };
      } catch {
        if (controller.signal.aborted) {
          throw new ApiError('timeout', 'The gateway did not answer in time.');
        }
        throw new ApiError('network_error', 'The gateway could not be reached.');
      } finally {
        clearTimeout(timer);
      }
    },

    match(photo, k, options) {
      const form = new FormData();
      appendPhoto(form, 'image', photo);
      form.append('k', String(k));
      form.append('explain', 'true');
      return upload<MatchOk>(ENDPOINTS.match.path, form, options);
    },

    listSearches(offset = 0, limit = 20) {
      return request<SearchesOk>('GET', `${ENDPOINTS.searches.path}?offset=${offset}&limit=${limit}`);
    },

    async getSearch(searchId) {
      const body = await request<SearchOk>('GET', fill(ENDPOINTS.search.path, searchId));
      return body.search;
    },

    async sendFeedback(searchId, feedback) {
      const body: FeedbackBody = feedback;
      await request<FeedbackOk>('POST', fill(ENDPOINTS.feedback.path, searchId), body);
    },

    enrol(name, metadata, photos, options) {
      const form = new FormData();
      form.append('name', name);
      if (Object.keys(metadata).length > 0) {
        form.append('metadata', JSON.stringify(metadata));
      }
      photos.forEach((photo) => appendPhoto(form, 'image', photo));
      return upload<EnrolOk>(ENDPOINTS.persons.path, form, options);
    },

    resolve,

    imageHeaders: authHeaders,

    async fetchImage(link) {
      let response: Response;
      try {
        response = await fetch(resolve(link), { headers: authHeaders() });
      } catch {
        throw new ApiError('network_error', 'The gateway could not be reached.');
      }
      if (!response.ok) {
        throw parseEnvelope(response.status, await response.text(), null);
      }
      return response.blob();
    },
  };
}
