import { useCallback, useEffect, useRef, useState } from 'react';

import type { Enrolment, PhotoFile } from '../api/types';
import { useEnrolClient } from './ClientContext';

export type EnrolState =
  | { status: 'idle' }
  | { status: 'uploading'; progress: number }
  | { status: 'done'; enrolment: Enrolment; photos: PhotoFile[] }
  | { status: 'error'; error: unknown };

/** One enrolment upload with progress, sent with the enrol key; cancel aborts it. */
export function useEnrol() {
  const client = useEnrolClient();
  const [state, setState] = useState<EnrolState>({ status: 'idle' });
  const controller = useRef<AbortController | null>(null);

  useEffect(() => () => controller.current?.abort(), []);

  const enrol = useCallback(
    async (name: string, metadata: Record<string, string>, photos: PhotoFile[]) => {
      const current = new AbortController();
      controller.current = current;
      setState({ status: 'uploading', progress: 0 });
      try {
        const enrolment = await client().enrol(name, metadata, photos, {
          signal: current.signal,
          onProgress: (progress) => setState({ status: 'uploading', progress }),
        });
        setState({ status: 'done', enrolment, photos });
      } catch (error) {
        setState({ status: 'error', error });
      }
    },
    [client],
  );

  const cancel = useCallback(() => controller.current?.abort(), []);
  const reset = useCallback(() => setState({ status: 'idle' }), []);
  return { state, enrol, cancel, reset };
}
