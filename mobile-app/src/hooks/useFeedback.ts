import { useCallback, useState } from 'react';

import { useClient } from './ClientContext';

export type FeedbackStatus =
  | { state: 'sending'; correct: boolean }
  | { state: 'sent'; correct: boolean }
  | { state: 'error'; correct: boolean; error: unknown };

/** Per-person feedback ("correct" / "not this person") on one search. */
export function useFeedback(searchId: string) {
  const client = useClient();
  const [byPerson, setByPerson] = useState<Record<string, FeedbackStatus>>({});

  const send = useCallback(
    async (personId: string, correct: boolean) => {
      setByPerson((s) => ({ ...s, [personId]: { state: 'sending', correct } }));
      try {
        await client().sendFeedback(searchId, { person_id: personId, correct });
        setByPerson((s) => ({ ...s, [personId]: { state: 'sent', correct } }));
      } catch (error) {
        setByPerson((s) => ({ ...s, [personId]: { state: 'error', correct, error } }));
      }
    },
    [client, searchId],
  );

  return { byPerson, send };
}
