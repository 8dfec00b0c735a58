// Errors of the API server, kept as the server said them (code, reason, message, causes), plus the
// predicates reconcile code branches on.

/** One entry of `details.causes` in a Status: for validation errors, the field and what is wrong. */
export interface KubeStatusCause {
  field?: string;
  message?: string;
  reason?: string;
}

/** A non-2xx answer from the API server (or an ERROR watch event), with the fields of its Status body. */
export class KubeApiError extends Error {
  constructor(
    /** HTTP status code, e.g. 422. */
    readonly code: number,
    /** Status reason, e.g. 'Invalid', 'Forbidden', 'NotFound', 'AlreadyExists', 'Conflict', 'Expired'. */
    readonly reason: string,
    /** The server's message, verbatim. */
    readonly serverMessage: string,
    readonly causes: KubeStatusCause[],
    readonly method: string,
    readonly path: string,
    /** The whole Status object (or the raw body text when it was not JSON). */
    readonly body: unknown,
  ) {
    super(`${method} ${path}: ${code} ${reason}: ${serverMessage}`);
    this.name = 'KubeApiError';
  }
}

/** A Status object as the API server writes it. */
export interface KubeStatus {
  kind: 'Status';
  apiVersion?: string;
  status?: string;
  code?: number;
  reason?: string;
  message?: string;
  details?: { name?: string; kind?: string; causes?: KubeStatusCause[] };
}

export function isStatus(body: unknown): body is KubeStatus {
  return typeof body === 'object' && body !== null && (body as { kind?: unknown }).kind === 'Status';
}

/** Builds the error for an answer with status `code` and body `text`. */
export function apiErrorFromResponse(code: number, text: string, method: string, path: string): KubeApiError {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not a Status object (e.g. a proxy's error page); keep the text.
  }
  if (isStatus(body)) return apiErrorFromStatus(body, method, path, code);
  return new KubeApiError(code, '', text.trim(), [], method, path, body);
}

/** Builds the error for a Status object (an error answer's body, or a watch's ERROR event). */
export function apiErrorFromStatus(status: KubeStatus, method: string, path: string, fallbackCode = 500): KubeApiError {
  return new KubeApiError(
    status.code ?? fallbackCode,
    status.reason ?? '',
    status.message ?? '',
    status.details?.causes ?? [],
    method,
    path,
    status,
  );
}

export function isApiError(error: unknown, code: number): error is KubeApiError {
  return error instanceof KubeApiError && error.code === code;
}

export const isNotFound = (error: unknown): error is KubeApiError => isApiError(error, 404);
export const isAlreadyExists = (error: unknown): error is KubeApiError =>
  isApiError(error, 409) && error.reason === 'AlreadyExists';
/** 409 Conflict: a write raced another (stale resourceVersion, SSA field conflict). Requeue, do not report. */
export const isConflict = (error: unknown): error is KubeApiError =>
  isApiError(error, 409) && error.reason !== 'AlreadyExists';
/** 410 Gone / Expired: the resourceVersion is too old for a watch, or a list's continue token expired. */
export const isGone = (error: unknown): error is KubeApiError => isApiError(error, 410);
