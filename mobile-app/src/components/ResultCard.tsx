import { StyleSheet, Text, View } from 'react-native';

import { type CandidateWords, describeError } from '../api/messages';
import type { Match } from '../api/types';
import type { FeedbackStatus } from '../hooks/useFeedback';
import { Button } from './Button';
import { ConfidenceBar } from './ConfidenceBar';
import { GatewayImage } from './GatewayImage';
import { useTheme } from './theme';

interface Props {
  match: Match;
  /** what this candidate is called, from `resultWords` */
  words: CandidateWords;
  feedback?: FeedbackStatus;
  onFeedback: (correct: boolean) => void;
}

function feedbackText(status: FeedbackStatus): string {
  if (status.state === 'sending') return 'Sending feedback…';
  if (status.state === 'error') return `Feedback not sent: ${describeError(status.error).title}`;
  return status.correct ? 'Thanks: marked as the right person' : 'Thanks: marked as not this person';
}

/** One ranked person: thumbnail, name, similarity, what the search makes of them, and the feedback buttons. */
export function ResultCard({ match, words, feedback, onFeedback }: Props) {
  const theme = useTheme();
  const name = match.name ?? 'Deleted person';
  const busy = feedback?.state === 'sending';
  return (
    <View
      testID={`result-${match.rank}`}
      style={[styles.card, { backgroundColor: theme.card, borderColor: theme.border }]}
    >
      <View style={styles.row}>
        <GatewayImage link={match.thumbnail_url} label={`Photo of ${name}`} style={styles.thumb} />
        <View style={styles.body}>
          <Text style={[styles.name, { color: theme.text }]} numberOfLines={2}>
            {match.rank}. {name}
          </Text>
          <Text style={{ color: theme.muted }}>Similarity {match.similarity.toFixed(2)}</Text>
          <ConfidenceBar words={words} />
        </View>
      </View>
      <View style={styles.buttons}>
        <Button
          title="Correct"
          kind="secondary"
          label={`${name} is the right person`}
          selected={feedback?.state === 'sent' && feedback.correct}
          disabled={busy}
          onPress={() => onFeedback(true)}
        />
        <Button
          title="Not this person"
          kind="secondary"
          label={`${name} is not this person`}
          selected={feedback?.state === 'sent' && !feedback.correct}
          disabled={busy}
          onPress={() => onFeedback(false)}
        />
      </View>
      {feedback ? (
        <Text
          accessibilityLiveRegion="polite"
          style={{ color: feedback.state === 'error' ? theme.danger : theme.muted }}
        >
          {feedbackText(feedback)}
        </Text>
      ) : null}
    </View>
  );
}

const styles = StyleSheet.create({
  card: { borderWidth: 1, borderRadius: 12, padding: 12, gap: 10 },
  row: { flexDirection: 'row', gap: 12 },
  thumb: { width: 80, height: 80, borderRadius: 8, backgroundColor: '#8884' },
  body: { flex: 1, gap: 4 },
  name: { fontSize: 18, fontWeight: '700' },
  buttons: { flexDirection: 'row', gap: 10, flexWrap: 'wrap' },
});
