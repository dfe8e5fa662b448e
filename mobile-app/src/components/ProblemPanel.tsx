import { StyleSheet, Text, View } from 'react-native';

import { describeError } from '../api/messages';
import { Button } from './Button';
import { useTheme } from './theme';

/** An error in plain words, with a retry button when trying again can help. */
export function ProblemPanel({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const theme = useTheme();
  const problem = describeError(error);
  return (
    <View
      accessibilityRole="alert"
      accessibilityLiveRegion="polite"
      style={[styles.box, { borderColor: theme.danger, backgroundColor: theme.card }]}
    >
      <Text style={[styles.title, { color: theme.danger }]}>{problem.title}</Text>
      <Text style={{ color: theme.text }}>{problem.detail}</Text>
      {problem.retryable && onRetry ? <Button title="Try again" onPress={onRetry} /> : null}
    </View>
  );
}

const styles = StyleSheet.create({
  box: { borderWidth: 2, borderRadius: 12, padding: 14, gap: 10 },
  title: { fontSize: 17, fontWeight: '700' },
});
