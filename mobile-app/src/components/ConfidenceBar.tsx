import { StyleSheet, Text, View } from 'react-native';

import type { CandidateWords } from '../api/messages';
import { useTheme } from './theme';

interface Props {
  words: CandidateWords;
}

/**
 * What a candidate is, in words (`candidateWords`), and a bar only beside a calibrated percentage: a candidate
 * that is not presented as a match gets neither a percentage nor a filled bar.
 */
export function ConfidenceBar({ words }: Props) {
  const theme = useTheme();
  const colour = { likely: theme.success, possible: theme.warning, not_a_match: theme.muted }[words.verdict];
  return (
    <View accessible accessibilityLabel={words.label} style={styles.wrap}>
      <Text style={[styles.words, { color: colour }]}>{words.text}</Text>
      {words.percent === null ? null : (
        <View style={[styles.track, { backgroundColor: theme.barTrack }]}>
          <View
            testID="confidence-fill"
            style={[styles.fill, { width: `${words.percent}%`, backgroundColor: colour }]}
          />
        </View>
      )}
    </View>
  );
}

const styles = StyleSheet.create({
  wrap: { gap: 4 },
  words: { fontSize: 15, fontWeight: '700' },
  track: { height: 8, borderRadius: 4, overflow: 'hidden' },
  fill: { height: 8, borderRadius: 4 },
});
