import { StyleSheet, Text, View } from 'react-native';

import { CONFIDENCE_WORDS, confidenceLevel } from '../api/messages';
import { useTheme } from './theme';

interface Props {
  confidence: number | null;
  similarity: number;
  threshold: number | null;
}

/** Calibrated confidence as words and a bar; the bar is decoration, the words carry the meaning. */
export function ConfidenceBar({ confidence, similarity, threshold }: Props) {
  const theme = useTheme();
  const level = confidenceLevel(confidence, similarity, threshold);
  const colour = { likely: theme.success, possible: theme.warning, unlikely: theme.muted }[level];
  const fraction = confidence ?? Math.max(0, Math.min(1, similarity));
  const percent = Math.round(fraction * 100);
  const words = CONFIDENCE_WORDS[level];
  return (
    <View
      accessible
      accessibilityLabel={
        confidence === null ? `${words}, confidence not calibrated` : `${words}, confidence ${percent} percent`
      }
      style={styles.wrap}
    >
      <Text style={[styles.words, { color: colour }]}>
        {words}
        {confidence === null ? '' : ` · ${percent}%`}
      </Text>
      <View style={[styles.track, { backgroundColor: theme.barTrack }]}>
        <View
          testID="confidence-fill"
          style={[styles.fill, { width: `${percent}%`, backgroundColor: colour }]}
        />
      </View>
    </View>
  );
}

const styles = StyleSheet.create({
  wrap: { gap: 4 },
  words: { fontSize: 15, fontWeight: '700' },
  track: { height: 8, borderRadius: 4, overflow: 'hidden' },
  fill: { height: 8, borderRadius: 4 },
});
